"""colorlab.color against scikit-image over all 256^3 8-bit colours, plus gradients and errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import lab2rgb, rgb2lab

from colorlab.color import LabToRgb, RgbToLab, lab_to_rgb, rgb_to_lab


@pytest.fixture(scope="module")
def all_colours():
    v = np.arange(256, dtype=np.float64) / 255
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(4096, 4096, 3)


@pytest.fixture(scope="module")
def all_colours_lab(all_colours):
    return rgb2lab(all_colours)


def test_float64_matches_skimage_on_every_8bit_colour(all_colours, all_colours_lab):
    ours = rgb_to_lab(torch.from_numpy(all_colours).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(ours - all_colours_lab).max() <= 1e-4


def test_float32_matches_skimage_on_every_8bit_colour(all_colours, all_colours_lab):
    x = torch.from_numpy(all_colours).permute(2, 0, 1).float()
    ours = rgb_to_lab(x).permute(1, 2, 0).double().numpy()
    assert np.abs(ours - all_colours_lab).max() <= 2e-3


def test_round_trip_float64_on_every_8bit_colour(all_colours, all_colours_lab):
    lab = torch.from_numpy(all_colours_lab).permute(2, 0, 1)
    back = lab_to_rgb(lab).permute(1, 2, 0).numpy()
    assert np.abs(back - all_colours).max() <= 1e-5


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    gen = torch.Generator().manual_seed(0)
    lab = torch.rand(3, 64, 64, generator=gen, dtype=torch.float64)
    lab = lab * torch.tensor([100.0, 256.0, 256.0]).view(3, 1, 1) - torch.tensor([0, 128.0, 128.0]).view(3, 1, 1)
    ours = lab_to_rgb(lab).permute(1, 2, 0).numpy()
    with pytest.warns(UserWarning):  # skimage warns about negative Z values, we clip silently
        ref = lab2rgb(lab.permute(1, 2, 0).numpy())
    assert np.abs(ours - ref).max() <= 1e-6
    assert ours.min() >= 0 and ours.max() <= 1


def test_out_of_gamut_clips_unless_asked():
    lab = torch.tensor([50.0, 120.0, -120.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert lab_to_rgb(lab).min() >= 0 and lab_to_rgb(lab).max() <= 1
    raw = lab_to_rgb(lab, clip=False)
    assert raw.min() < 0 or raw.max() > 1


def test_shapes_dtypes_and_leading_dimensions(device):
    x = torch.rand(2, 5, 3, 7, 9, device=device)
    out = rgb_to_lab(x)
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert lab_to_rgb(out).dtype == torch.float32
    single = rgb_to_lab(x[0, 0])
    torch.testing.assert_close(single, out[0, 0], rtol=1e-5, atol=1e-4)
    x64 = x.double()
    assert rgb_to_lab(x64).dtype == torch.float64


def test_blockwise_and_whole_tensor_paths_agree():
    x = torch.rand(5, 3, 120, 130, dtype=torch.float64)  # > one block of pixels
    whole = rgb_to_lab(x.clone().requires_grad_(True)).detach()  # grad path: no blocks
    torch.testing.assert_close(rgb_to_lab(x), whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(lab_to_rgb(whole), lab_to_rgb(whole.clone().requires_grad_(True)).detach(),
                               rtol=0, atol=1e-12)


def test_modules_wrap_functions():
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(RgbToLab()(x), rgb_to_lab(x))
    torch.testing.assert_close(LabToRgb()(rgb_to_lab(x)), lab_to_rgb(rgb_to_lab(x)))


def test_gradcheck_both_directions():
    # keep away from the branch points (0.04045, 0.0031308) where the derivative jumps
    x = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))
    lab = rgb_to_lab(x.detach()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: lab_to_rgb(t, clip=False), (lab,))


def test_gradients_are_finite_at_black_and_white():
    x = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_(True)
    rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    lab = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_property_round_trip(rgb):
    x = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("fn", [rgb_to_lab, lab_to_rgb])
def test_bad_inputs_name_the_problem(fn):
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        fn(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        fn(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(torch.full((1, 3, 2, 2), float("inf")))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(np.zeros((3, 2, 2)))


def test_uint8_error_says_how_to_convert():
    with pytest.raises(TypeError, match="/ 255"):
        rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))


@pytest.mark.parametrize("fn", [rgb_to_lab, lab_to_rgb])
def test_empty_input_is_a_clear_error(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0, 3, 4, 4))
