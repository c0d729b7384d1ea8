"""Colourfulness measures against independent references: NumPy float64 formulas of Hasler &
Süsstrunk (2003), scikit-image's HSV conversion and NumPy's histogram."""
import numpy as np
import pytest
import torch
from skimage import color, data

from colorlab.colorfulness import hasler_susstrunk, hsv_saturation, mean_chroma, saturation_histogram


@pytest.fixture
def photos():
    imgs = [data.astronaut()[:128, :128], data.coffee()[:128, :128], data.chelsea()[:128, :128]]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).double() / 255


def test_hasler_susstrunk_matches_the_papers_formula(photos):
    for img, ours in zip(photos.permute(0, 2, 3, 1).numpy(), hasler_susstrunk(photos)):
        R, G, B = (img * 255).transpose(2, 0, 1)
        rg, yb = R - G, 0.5 * (R + G) - B
        M = np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2) + 0.3 * np.sqrt(np.mean(rg) ** 2 +
                                                                       np.mean(yb) ** 2)
        assert ours.item() == pytest.approx(M, rel=1e-12)


def test_a_gray_version_is_less_colourful(photos):
    gray = photos.mean(dim=1, keepdim=True).expand_as(photos)
    assert (hasler_susstrunk(gray) < 1e-9).all() and (hasler_susstrunk(photos) > 10).all()


def test_saturation_matches_scikit_image(photos):
    ref = np.stack([color.rgb2hsv(img)[..., 1] for img in photos.permute(0, 2, 3, 1).numpy()])
    assert np.allclose(hsv_saturation(photos).numpy(), ref, atol=1e-12)


def test_saturation_histogram_matches_numpy(photos):
    s = hsv_saturation(photos).numpy().ravel()
    ref, _ = np.histogram(s, bins=np.arange(11) / 10)
    assert np.allclose(saturation_histogram(photos, bins=10).numpy(), ref / s.size)


def test_mean_chroma_matches_scikit_image_lab(photos):
    lab = np.stack([color.rgb2lab(img) for img in photos.permute(0, 2, 3, 1).numpy()])
    ref = np.hypot(lab[..., 1], lab[..., 2]).reshape(len(lab), -1).mean(axis=1)
    ab = torch.from_numpy(lab[..., 1:]).permute(0, 3, 1, 2)
    assert np.allclose(mean_chroma(ab).numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda: mean_chroma(torch.zeros(1, 3, 2, 2)), "ab must have 2 channels"),
    (lambda: hasler_susstrunk(torch.zeros(1, 3, 0, 2)), "rgb is empty"),
    (lambda: hasler_susstrunk(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)), "floating-point"),
    (lambda: saturation_histogram(torch.zeros(1, 3, 2, 2), bins=0), "bins must be"),
    (lambda: hsv_saturation(torch.full((1, 3, 1, 1), float("nan"))), "NaN"),
])
def test_bad_inputs_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
