"""Colorization metrics of the report (derived in ``book/08_evaluation.ipynb``).

*AuC* (Zhang et al.'s "raw accuracy"): for thresholds ``t = 0, 1, ..., 150`` (Lab units) take the
fraction of pixels whose ab error ``||ŷ - y||_2`` is at most ``t``, and average over the
thresholds: the normalised area under the cumulative error curve, in [0, 1].
*Rebalanced AuC*: the same with every pixel weighted by the inverse prior of its true bin, so
that rare saturated colours count as much as common grey ones.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._validation import (check_finite, check_finite_result, check_float, check_nonempty,
                          check_nonnegative, check_shape, check_tensor)
from .gamut import nearest_bin
# paired differences lived here before colorlab.paired_differences: still importable from here
from .paired_differences import paired_difference, paired_difference_over_seeds
from .prior import check_distribution, rebalance_weights

__all__ = ["auc", "rebalanced_auc", "ab_error", "cumulative_error_per_pixel",
           "cumulative_error_per_image", "pixel_rebalance_weights", "error_scores", "gray_ab",
           "random_ab", "paired_difference", "paired_difference_over_seeds",
           "DEFAULT_THRESHOLDS"]

DEFAULT_THRESHOLDS = range(0, 151)


def _thresholds(thresholds: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    try:
        t = torch.as_tensor(list(thresholds), dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.ndim != 1 or t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"thresholds must be a non-empty sequence of finite numbers (Lab units), "
                         f"got {thresholds!r}"[:300])
    return t


def ab_error(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean ab error ``(B, 2, H, W) x2 -> (B, H, W)`` in Lab units.

    >>> ab_error(torch.zeros(1, 2, 1, 1), torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)).item()
    5.0
    """
    for name, x in (("pred_ab", pred_ab), ("true_ab", true_ab)):
        check_tensor(x, name)
        check_float(x, name)
        check_shape(x, name, ndim=4, channels=2, channel_dim=1, layout="(B, 2, H, W)")
        check_nonempty(x, name)
        check_finite(x, name)
    if pred_ab.shape != true_ab.shape:
        raise ValueError(f"pred_ab {tuple(pred_ab.shape)} and true_ab {tuple(true_ab.shape)} "
                         f"must have the same shape")
    return check_finite_result(torch.linalg.vector_norm(pred_ab.double() - true_ab.double(), dim=1),
                               "pred_ab or true_ab", "ab values are in Lab units, about -128 to 128")


def _weighted_auc(err: torch.Tensor, weight: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    b = err.shape[0]
    err, weight = err.reshape(b, -1), weight.reshape(b, -1)
    total = weight.sum(dim=1)
    if bool((total <= 0).any()):
        raise ValueError("every image needs at least one pixel with positive weight")
    # sum over thresholds of [err <= t] == number of thresholds >= err (t sorted)
    count = len(t) - torch.searchsorted(t.sort().values, err.contiguous(), right=False)
    return (weight * count).sum(dim=1) / (total * len(t))


def auc(pred_ab: torch.Tensor, true_ab: torch.Tensor,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> torch.Tensor:
    """Per-image AuC of the cumulative ab-error curve, ``(B,)`` float64 in [0, 1].

    ``AuC = 1/|T| sum_{t in T} (1/HW) sum_{h,w} [||ŷ_hw - y_hw|| <= t]``.

    >>> y = torch.zeros(2, 2, 4, 4)
    >>> auc(y, y).tolist(), round(auc(y + 30.0, y)[0].item(), 4)  # error 42.43 everywhere
    ([1.0, 1.0], 0.7152)
    """
    err = ab_error(pred_ab, true_ab)
    return _weighted_auc(err, torch.ones_like(err), _thresholds(thresholds, err))


def rebalanced_auc(pred_ab: torch.Tensor, true_ab: torch.Tensor, prior: torch.Tensor,
                   thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                   bins: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image AuC with each pixel weighted by ``1 / prior[q*]``, ``q*`` its true nearest bin.

    Args:
        prior: ``(Q,)`` colour distribution (best a smoothed one, :func:`colorlab.prior.smooth_prior`);
            bins of zero mass get the largest finite weight (see
            :func:`colorlab.prior.rebalance_weights` with ``lam = 0``, which computes the weights).

    >>> y = torch.zeros(1, 2, 4, 4)
    >>> rebalanced_auc(y, y, torch.full((313,), 1 / 313)).tolist()
    [1.0]
    """
    err = ab_error(pred_ab, true_ab)
    weights = pixel_rebalance_weights(true_ab, prior, bins).to(err.device)
    return _weighted_auc(err, weights, _thresholds(thresholds, err))


def pixel_rebalance_weights(true_ab: torch.Tensor, prior: torch.Tensor,
                            bins: torch.Tensor | None = None) -> torch.Tensor:
    """The weight of each pixel in :func:`rebalanced_auc`: ``1 / prior[q*]`` (normalised as
    :func:`colorlab.prior.rebalance_weights` with ``lam = 0``), ``q*`` the nearest bin of the true
    ab. ``(B, 2, H, W) -> (B, H, W)`` float64. It depends on the targets only, so an evaluation
    of several methods computes it once (see :func:`error_scores`).

    >>> pixel_rebalance_weights(torch.zeros(1, 2, 2, 2), torch.full((313,), 1 / 313)).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    check_tensor(true_ab, "true_ab")
    check_distribution(prior, "prior")
    num_bins = 313 if bins is None else len(bins)
    if prior.shape != (num_bins,):
        raise ValueError(f"prior must have shape ({num_bins},), one probability per ab bin, got "
                         f"{tuple(prior.shape)}")
    return rebalance_weights(prior.double(), lam=0.0).to(true_ab.device)[nearest_bin(true_ab, bins)]


def _fraction_within(err: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``mean([err <= t_j])`` for each threshold, ``(N,) x (T,) -> (T,)`` float64, in O(N log T)
    time and O(N) memory (an ``(N, T)`` comparison would need gigabytes for a test split)."""
    sorted_t, order = t.sort()
    # err <= sorted_t[j]  <=>  (index of the first threshold >= err) <= j
    first = torch.searchsorted(sorted_t, err.contiguous(), right=False)
    within = torch.bincount(first, minlength=len(t) + 1)[:len(t)].cumsum(0)
    out = torch.empty(len(t), dtype=torch.float64, device=err.device)
    out[order] = within.double() / err.numel()
    return out


def cumulative_error_per_pixel(pred_ab: torch.Tensor, true_ab: torch.Tensor,
                               thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> torch.Tensor:
    """Fraction of all pixels (pooled over the batch) with ab error <= t, for each t: ``(T,)``.

    >>> y = torch.zeros(1, 2, 2, 2)
    >>> cumulative_error_per_pixel(y + 3.0, y, thresholds=[0, 4, 5]).tolist()
    [0.0, 0.0, 1.0]
    """
    err = ab_error(pred_ab, true_ab)
    return _per_pixel_curve(err, _thresholds(thresholds, err))


def _per_pixel_curve(err: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return _fraction_within(err.reshape(-1), t)


def _per_image_curve(err: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return _fraction_within(err.flatten(1).mean(dim=1), t)


def cumulative_error_per_image(pred_ab: torch.Tensor, true_ab: torch.Tensor,
                               thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> torch.Tensor:
    """Fraction of images whose mean per-pixel ab error is <= t, for each t: ``(T,)``.

    >>> y = torch.zeros(2, 2, 2, 2); pred = y.clone(); pred[1] = 10.0  # errors 0 and 14.1
    >>> cumulative_error_per_image(pred, y, thresholds=[0, 10, 20]).tolist()
    [0.5, 0.5, 1.0]
    """
    err = ab_error(pred_ab, true_ab)
    return _per_image_curve(err, _thresholds(thresholds, err))


def error_scores(pred_ab: torch.Tensor, true_ab: torch.Tensor,
                 pixel_weights: torch.Tensor | None = None,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict[str, torch.Tensor]:
    """Every error metric of one method from a single :func:`ab_error` pass (a test split has
    millions of pixels; the metrics one by one would compute the error four times).

    Args:
        pred_ab, true_ab: ``(B, 2, H, W)`` in Lab units.
        pixel_weights: ``(B, H, W)`` from :func:`pixel_rebalance_weights` (computed once for all
            methods); ``None`` leaves out ``"rebalanced_auc"``.

    Returns a dict of float64 tensors, equal to what the metrics give one by one: ``auc`` and
    ``rebalanced_auc`` ``(B,)`` (:func:`auc`, :func:`rebalanced_auc`), ``cumulative_per_pixel``
    and ``cumulative_per_image`` ``(T,)`` (:func:`cumulative_error_per_pixel`,
    :func:`cumulative_error_per_image`).

    >>> y = torch.zeros(1, 2, 2, 2)
    >>> scores = error_scores(y + 3.0, y, thresholds=[0, 5])
    >>> sorted(scores), scores["auc"].tolist()
    (['auc', 'cumulative_per_image', 'cumulative_per_pixel'], [0.5])
    """
    err = ab_error(pred_ab, true_ab)
    t = _thresholds(thresholds, err)
    scores = {"auc": _weighted_auc(err, torch.ones_like(err), t),
              "cumulative_per_pixel": _per_pixel_curve(err, t),
              "cumulative_per_image": _per_image_curve(err, t)}
    if pixel_weights is not None:
        check_tensor(pixel_weights, "pixel_weights")
        if pixel_weights.shape != err.shape:
            raise ValueError(f"pixel_weights has shape {tuple(pixel_weights.shape)}, expected "
                             f"{tuple(err.shape)} (B, H, W) of true_ab: use "
                             f"pixel_rebalance_weights(true_ab, prior)")
        check_float(pixel_weights, "pixel_weights")
        check_finite(pixel_weights, "pixel_weights")
        check_nonnegative(pixel_weights, "pixel_weights", "use pixel_rebalance_weights(true_ab, "
                          "prior)")
        scores["rebalanced_auc"] = _weighted_auc(err, pixel_weights.to(err), t)
    return scores


def gray_ab(true_ab: torch.Tensor) -> torch.Tensor:
    """The Gray baseline: a = b = 0 everywhere, shaped like ``true_ab`` ``(B, 2, H, W)``.

    >>> gray_ab(torch.ones(1, 2, 3, 3)).abs().sum().item()
    0.0
    """
    check_tensor(true_ab, "true_ab")
    return torch.zeros_like(true_ab)


def random_ab(true_ab: torch.Tensor, pool_ab: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The Random baseline: for each image, the ab of a random image of ``pool_ab`` (the training
    set), resized (bilinear) to the target size.

    Args:
        true_ab: ``(B, 2, H, W)`` targets (only the shape, dtype and device are used).
        pool_ab: ``(N, 2, h, w)`` ab images to draw from.
        generator: a seeded ``torch.Generator`` for a reproducible draw.

    >>> pool = torch.randn(5, 2, 8, 8)
    >>> random_ab(torch.zeros(3, 2, 16, 16), pool, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2, 16, 16])
    """
    check_tensor(true_ab, "true_ab")
    check_shape(true_ab, "true_ab", ndim=4, channels=2, channel_dim=1, layout="(B, 2, H, W)")
    check_tensor(pool_ab, "pool_ab")
    check_shape(pool_ab, "pool_ab", ndim=4, channels=2, channel_dim=1, layout="(N, 2, h, w)")
    check_float(pool_ab, "pool_ab")
    check_nonempty(true_ab, "true_ab")
    check_nonempty(pool_ab, "pool_ab")
    check_finite(pool_ab, "pool_ab")
    pick = torch.randint(pool_ab.shape[0], (true_ab.shape[0],), generator=generator)
    chosen = pool_ab[pick.to(pool_ab.device)].to(device=true_ab.device, dtype=true_ab.dtype)
    if chosen.shape[-2:] != true_ab.shape[-2:]:
        chosen = F.interpolate(chosen, size=true_ab.shape[-2:], mode="bilinear",
                               align_corners=False)
    return check_finite_result(chosen, "pool_ab", f"its values do not fit {true_ab.dtype}; ab "
                               f"values are in Lab units, about -128 to 128")
