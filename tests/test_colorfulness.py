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


def test_the_evaluation_reports_colourfulness_for_every_method_and_the_truth():
    from colorlab.transforms import to_lab
    from colorlab.data import SampleImages
    from colorlab.evaluate import baseline_predictions, evaluate_predictions

    ds = SampleImages(size=16, n=8)
    m = evaluate_predictions(ds, baseline_predictions(ds, ds), torch.full((313,), 1 / 313))
    _, true_ab = to_lab(ds.images)
    assert m["Ground truth"]["mean_chroma"] == pytest.approx(float(mean_chroma(true_ab).mean()))
    assert m["Ground truth"]["colourfulness"] == pytest.approx(
        float(hasler_susstrunk(ds.images.double() / 255).mean()), rel=1e-5)
    assert m["Gray"]["mean_chroma"] == 0.0 and m["Gray"]["colourfulness"] < 0.01
    assert m["Gray"]["saturation_histogram"][0] > 0.99  # grey pixels have (almost) no saturation
    assert all(len(m[k]["saturation_histogram"]) == 20 for k in ("Gray", "Random", "Ground truth"))
