"""Soft-encoding against a dense float64 formula; decoding laws (mean, mode, annealed mean)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorlab.color import rgb_to_lab
from colorlab.decode import AnnealedMean, annealed_mean, mean, mode
from colorlab.encode import SoftEncoder, soft_encode, to_dense
from colorlab.gamut import ab_bins


def dense_soft_encoding(ab, k, sigma):
    """Reference: distances to all 313 bins in float64, k smallest, Gaussian, normalised."""
    bins = ab_bins(torch.float64)
    pts = ab.double().permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(pts, bins).square()
    vals, idx = torch.topk(d2, k, largest=False, sorted=True)
    w = torch.exp(-vals / (2 * sigma ** 2))
    w = w / w.sum(1, keepdim=True)
    dense = torch.zeros(len(pts), 313, dtype=torch.float64).scatter_(1, idx, w)
    return dense.reshape(ab.shape[0], ab.shape[2], ab.shape[3], 313).permute(0, 3, 1, 2)


@pytest.mark.parametrize("k,sigma", [(5, 5.0), (10, 5.0), (1, 2.0), (3, 20.0)])
def test_soft_encode_matches_dense_reference(k, sigma, device):
    gen = torch.Generator().manual_seed(k)
    ab = rgb_to_lab(torch.rand(2, 3, 6, 7, generator=gen, dtype=torch.float64))[:, 1:]
    idx, w = soft_encode(ab.to(device), k=k, sigma=sigma)
    assert idx.shape == w.shape == (2, k, 6, 7)
    dense = to_dense(idx.cpu(), w.cpu())
    torch.testing.assert_close(dense, dense_soft_encoding(ab, k, sigma), rtol=0, atol=1e-12)


def test_weights_sum_to_one_nearest_first():
    ab = rgb_to_lab(torch.rand(3, 3, 8, 8))[:, 1:]
    idx, w = soft_encode(ab, k=5)
    torch.testing.assert_close(w.sum(1), torch.ones(3, 8, 8))
    assert (w[:, :-1] >= w[:, 1:] - 1e-6).all()


def test_far_out_of_gamut_points_stay_finite():
    ab = torch.tensor([[[[1e4]], [[-1e4]]]])
    idx, w = soft_encode(ab)
    assert torch.isfinite(w).all() and torch.allclose(w.sum(1), torch.ones(1, 1, 1))


def test_soft_encoder_module_follows_dtype():
    enc = SoftEncoder(k=4, sigma=3.0)
    ab = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    idx, w = enc(ab)
    assert w.dtype == torch.float64 and idx.shape == (1, 4, 2, 2)


@settings(max_examples=50, deadline=None)
@given(st.floats(-120, 120), st.floats(-120, 120), st.integers(1, 12), st.floats(0.5, 50))
def test_property_weights_form_a_distribution(a, b, k, sigma):
    ab = torch.tensor([a, b], dtype=torch.float64).view(1, 2, 1, 1)
    idx, w = soft_encode(ab, k=k, sigma=sigma)
    assert math.isclose(float(w.sum()), 1.0, rel_tol=1e-12)
    assert (w >= 0).all() and len(set(idx.flatten().tolist())) == k


def test_soft_encode_bad_arguments():
    ab = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="sigma"):
        soft_encode(ab, sigma=0)
    with pytest.raises(ValueError, match="sigma"):
        soft_encode(ab, sigma=-1.0)
    with pytest.raises(ValueError, match="k must be"):
        soft_encode(ab, k=400)
    with pytest.raises(ValueError, match="4 dimensions"):
        soft_encode(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="2 channels"):
        soft_encode(torch.zeros(1, 3, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        soft_encode(torch.zeros(1, 2, 2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="empty"):
        soft_encode(torch.zeros(0, 2, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        soft_encode(torch.full((1, 2, 2, 2), float("inf")))


def test_to_dense_bad_arguments():
    idx = torch.zeros(1, 2, 1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="same shape"):
        to_dense(idx, torch.zeros(1, 3, 1, 1))
    with pytest.raises(TypeError, match="int64"):
        to_dense(idx.int(), torch.zeros(1, 2, 1, 1))
    with pytest.raises(ValueError, match="outside"):
        to_dense(idx + 500, torch.zeros(1, 2, 1, 1))


# ---------------------------------------------------------------- decoding

def test_t1_is_the_mean_and_mean_is_the_expectation():
    logits = torch.randn(2, 313, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(annealed_mean(logits, T=1.0), mean(logits))
    p = torch.softmax(logits, 1)
    ref = (p[:, None] * ab_bins(torch.float64).T[None, :, :, None, None]).sum(2)
    torch.testing.assert_close(mean(logits), ref)


def test_reference_formula_for_annealed_mean():
    logits = torch.randn(2, 313, 2, 2, dtype=torch.float64)
    T = 0.38
    z = torch.softmax(logits, 1)
    f = torch.exp(torch.log(z) / T)
    f = f / f.sum(1, keepdim=True)
    ref = torch.einsum("bqhw,qc->bchw", f, ab_bins(torch.float64))
    torch.testing.assert_close(annealed_mean(logits, T=T), ref)


def test_small_t_tends_to_the_mode_and_stays_finite():
    logits = torch.randn(2, 313, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
    top2 = logits.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05  # where the mode is not a near-tie
    out = annealed_mean(logits, T=1e-3)
    assert torch.isfinite(out).all() and clear.float().mean() > 0.5
    torch.testing.assert_close(out.permute(0, 2, 3, 1)[clear],
                               mode(logits).permute(0, 2, 3, 1)[clear], atol=1e-3, rtol=0)


def test_minus_inf_logits_are_fine():
    logits = torch.randn(1, 313, 2, 2)
    logits[:, 100:] = float("-inf")
    out = annealed_mean(logits, T=0.01)
    assert torch.isfinite(out).all()
    assert torch.isfinite(mean(logits)).all()


@settings(max_examples=60, deadline=None)
@given(st.floats(-20, 20), st.floats(0.01, 1.0))
def test_property_two_bin_annealed_mean_lies_between_mode_and_mean(gap, T):
    logits = torch.full((1, 313, 1, 1), float("-inf"), dtype=torch.float64)
    logits[0, 10], logits[0, 200] = 0.0, gap
    am, mu, mo = (f(logits).flatten() for f in (lambda x: annealed_mean(x, T=T), mean, mode))
    # am = mu + s (mo - mu) with s in [0, 1]
    seg = mo - mu
    if float(seg.norm()) < 1e-12:
        torch.testing.assert_close(am, mu)
        return
    s = float((am - mu) @ seg / (seg @ seg))
    assert -1e-9 <= s <= 1 + 1e-9
    torch.testing.assert_close(am, mu + s * seg, atol=1e-8, rtol=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.floats(0.01, 5.0))
def test_property_annealed_mean_inside_the_bins_bounding_box(seed, T):
    logits = torch.randn(1, 313, 2, 2, generator=torch.Generator().manual_seed(seed)) * 4
    out = annealed_mean(logits.double(), T=T)
    q = ab_bins(torch.float64)
    for c in range(2):
        assert out[:, c].min() >= q[:, c].min() - 1e-9 and out[:, c].max() <= q[:, c].max() + 1e-9


def test_annealed_mean_module_and_shapes():
    assert AnnealedMean()(torch.zeros(2, 313, 3, 5)).shape == (2, 2, 3, 5)


def test_decode_bad_arguments():
    logits = torch.zeros(1, 313, 2, 2)
    for bad_t in (0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="T must be"):
            annealed_mean(logits, T=bad_t)
    with pytest.raises(ValueError, match="channels"):
        annealed_mean(torch.zeros(1, 300, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        annealed_mean(torch.full((1, 313, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="all -inf"):
        mean(torch.full((1, 313, 2, 2), float("-inf")))
    with pytest.raises(TypeError, match="floating-point"):
        mode(torch.zeros(1, 313, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        annealed_mean(torch.zeros(0, 313, 2, 2))
    with pytest.raises(ValueError, match="4 dimensions"):
        annealed_mean(torch.zeros(313, 2, 2))
