"""Priors, rebalancing weights and the two losses against dense float64 references."""
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from colorlab.color import rgb_to_lab
from colorlab.encode import soft_encode, to_dense
from colorlab.gamut import ab_bins
from colorlab.losses import L2Loss, RebalancedCrossEntropy, l2_loss, rebalanced_cross_entropy
from colorlab.prior import empirical_prior, rebalance_weights, smooth_prior


def random_ab(n=3, size=8, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return rgb_to_lab(torch.rand(n, 3, size, size, generator=gen, dtype=dtype))[:, 1:]


def test_empirical_prior_matches_a_kdtree_histogram():
    ab = random_ab(4, 16)
    p = empirical_prior(ab)
    _, nearest = cKDTree(ab_bins(torch.float64).numpy()).query(
        ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy())
    ref = np.bincount(nearest, minlength=313) / nearest.size
    np.testing.assert_allclose(p.numpy(), ref, atol=1e-15)
    assert p.dtype == torch.float64 and p.shape == (313,)


def test_empirical_prior_streams_batches():
    ab = random_ab(4, 16).float()
    assert torch.allclose(empirical_prior(ab), empirical_prior(iter([ab[:1], ab[1:3], ab[3:]])))
    # unequal batch sizes weigh by pixels, not by batches
    assert torch.allclose(empirical_prior([ab[:1], ab[1:]]), empirical_prior(ab))


def test_empirical_prior_rejects_nothing():
    with pytest.raises(ValueError, match="no pixels"):
        empirical_prior([])


def test_smooth_prior_matches_dense_formula():
    p = empirical_prior(random_ab(4, 16))
    q = ab_bins(torch.float64)
    d2 = ((q[:, None] - q[None]) ** 2).sum(-1)
    k = torch.exp(-d2 / (2 * 5.0 ** 2))
    k = k / k.sum(0, keepdim=True)
    ref = k @ p
    torch.testing.assert_close(smooth_prior(p, 5.0), ref / ref.sum())


def test_smoothing_follows_ab_distance_not_the_array_index():
    q = ab_bins(torch.float64)
    # find neighbours in the table that are far apart in ab (the end of one column of a values)
    jumps = [i for i in range(312) if float((q[i] - q[i + 1]).norm()) > 50]
    i = jumps[0]
    p = torch.zeros(313, dtype=torch.float64)
    p[i] = 1.0
    ps = smooth_prior(p, 5.0)
    assert float(ps[i + 1]) < 1e-20  # far in ab: no mass moves, though adjacent in the array
    near = int(((q - q[i]).norm(dim=1) == 10).nonzero()[0])
    assert float(ps[near]) > 0.05


def test_rebalance_weights_normalisation_and_shape():
    p = smooth_prior(empirical_prior(random_ab(4, 16)))
    for lam in (0.0, 0.5, 1.0):
        w = rebalance_weights(p, lam)
        assert torch.isfinite(w).all() and (w > 0).all()
        assert abs(float((p * w).sum()) - 1.0) < 1e-12
    w = rebalance_weights(p, 0.5)
    ref = 1.0 / (0.5 * p + 0.5 / 313)
    torch.testing.assert_close(w, ref / (p * ref).sum())
    assert torch.allclose(rebalance_weights(p, 1.0), torch.ones(313, dtype=torch.float64))


def test_zero_mass_bins_give_no_inf_or_nan():
    p = torch.zeros(313, dtype=torch.float64)
    p[:10] = 0.1
    for lam in (0.0, 0.5):
        w = rebalance_weights(p, lam)
        assert torch.isfinite(w).all()
    w0 = rebalance_weights(p, 0.0)
    assert float(w0[200]) == float(w0[:10].max())


def test_prior_bad_arguments():
    p = torch.full((313,), 1 / 313, dtype=torch.float64)
    for lam in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="lam"):
            rebalance_weights(p, lam)
    for sigma in (0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            smooth_prior(p, sigma)
    with pytest.raises(ValueError, match="non-negative"):
        rebalance_weights(-p)
    with pytest.raises(ValueError, match="NaN or inf"):
        smooth_prior(torch.full((313,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="1-D"):
        smooth_prior(torch.zeros(0, dtype=torch.float64))
    with pytest.raises(ValueError, match="entries"):
        smooth_prior(torch.ones(10, dtype=torch.float64))


# ---------------------------------------------------------------- losses

def dense_cross_entropy(logits, ab, weights, k, sigma):
    """Eq. 2 with a dense float64 target and an explicit softmax."""
    idx, w = soft_encode(ab.double(), k=k, sigma=sigma)
    z = to_dense(idx, w)
    log_p = torch.log(torch.softmax(logits.double(), 1))
    per_pixel = -(z * log_p).sum(1)
    if weights is not None:
        per_pixel = per_pixel * weights.double()[idx[:, 0]]
    return per_pixel


@pytest.mark.parametrize("rebalance", [False, True])
def test_cross_entropy_matches_dense_reference(rebalance, device):
    ab = random_ab(2, 4)
    logits = torch.randn(2, 313, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    weights = rebalance_weights(smooth_prior(empirical_prior(random_ab(4, 16)))) if rebalance else None
    ref = dense_cross_entropy(logits, ab, weights, 5, 5.0)
    loss_sum = rebalanced_cross_entropy(logits.to(device), ab.to(device), weights, reduction="sum")
    torch.testing.assert_close(loss_sum.cpu(), ref.sum())
    loss_mean = rebalanced_cross_entropy(logits.to(device), ab.to(device), weights)
    torch.testing.assert_close(loss_mean.cpu(), ref.sum() / ref.numel())
    none = rebalanced_cross_entropy(logits, ab, weights, reduction="none")
    torch.testing.assert_close(none, ref)
    module = RebalancedCrossEntropy(weights, reduction="sum").double().to(device)
    torch.testing.assert_close(module(logits.to(device), ab.to(device)).cpu(), ref.sum())


def test_cross_entropy_gradcheck():
    ab = random_ab(1, 2)
    weights = rebalance_weights(smooth_prior(empirical_prior(random_ab(4, 16))))
    logits = torch.randn(1, 313, 2, 2, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: rebalanced_cross_entropy(x, ab, weights, reduction="sum"), (logits,))


def test_cross_entropy_is_finite_for_extreme_logits():
    logits = torch.zeros(1, 313, 2, 2)
    logits[:, 0] = 1e4
    loss = rebalanced_cross_entropy(logits, torch.zeros(1, 2, 2, 2))
    assert torch.isfinite(loss)


def test_no_weights_equals_unit_weights():
    ab = random_ab(1, 4).float()
    logits = torch.randn(1, 313, 4, 4)
    torch.testing.assert_close(rebalanced_cross_entropy(logits, ab),
                               rebalanced_cross_entropy(logits, ab, torch.ones(313)))


def test_l2_loss_is_equation_1():
    pred, true = random_ab(2, 4, seed=1), random_ab(2, 4, seed=2)
    ref = 0.5 * ((pred - true) ** 2).sum()
    torch.testing.assert_close(l2_loss(pred, true, "sum"), ref)
    torch.testing.assert_close(L2Loss()(pred, true), ref / (2 * 4 * 4))
    assert l2_loss(pred, true, "none").shape == (2, 4, 4)
    x = pred.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: l2_loss(t, true), (x,))


def test_loss_bad_arguments():
    logits, ab = torch.zeros(1, 313, 2, 2), torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="reduction"):
        rebalanced_cross_entropy(logits, ab, reduction="avg")
    with pytest.raises(ValueError, match="downsample"):
        rebalanced_cross_entropy(logits, torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        rebalanced_cross_entropy(torch.zeros(1, 300, 2, 2), ab)
    with pytest.raises(ValueError, match="weights must have shape"):
        RebalancedCrossEntropy(torch.ones(10))
    with pytest.raises(ValueError, match="sigma"):
        RebalancedCrossEntropy(sigma=0)
    with pytest.raises(ValueError, match="k must be"):
        rebalanced_cross_entropy(logits, ab, k=1000)
    with pytest.raises(TypeError, match="floating-point"):
        l2_loss(torch.zeros(1, 2, 2, 2, dtype=torch.long), ab)
    with pytest.raises(ValueError, match="must match"):
        l2_loss(torch.zeros(1, 2, 3, 3), ab)
    with pytest.raises(ValueError, match="NaN"):
        l2_loss(torch.full((1, 2, 2, 2), float("nan")), ab)
