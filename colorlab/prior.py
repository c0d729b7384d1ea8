"""Empirical colour priors and class-rebalancing weights (derived in
``book/04_regression_vs_classification.ipynb``).

Natural images are dominated by desaturated ab values, so a classifier trained with plain
cross-entropy predicts greyish colours. Zhang et al. weight each pixel by

    w_q ∝ ((1 - lam) p~_q + lam / Q)^-1,      normalised so that  sum_q p~_q w_q = 1,

where ``p~`` is the empirical distribution ``p`` of nearest bins smoothed by a Gaussian of width
``sigma`` over the ab plane (``lam = 0.5``, ``sigma = 5`` in the paper).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ._validation import (check_bins, check_finite, check_float, check_images, check_positive,
                          check_positive_int, check_tensor, check_unit_interval)
from .gamut import NUM_BINS, ab_bins, nearest_bin

__all__ = ["empirical_prior", "smooth_prior", "rebalance_weights", "prior_from_images",
           "check_distribution"]


def empirical_prior(ab_batches: torch.Tensor | Iterable[torch.Tensor],
                    bins: torch.Tensor | None = None) -> torch.Tensor:
    """Distribution of nearest bins over all pixels of ``ab_batches``.

    Args:
        ab_batches: one ab tensor ``(B, 2, H, W)`` or an iterable of them (streamed: only one
            batch is in memory at a time; any device, counts accumulate on that device).
        bins: ``(Q, 2)`` bin centres; default the 313 of :func:`colorlab.gamut.ab_bins`.

    Returns:
        ``(Q,)`` float64 tensor on the CPU that sums to 1.

    >>> ab = torch.zeros(1, 2, 4, 4); ab[..., :2] = 10.0  # half the pixels at (10, 10)
    >>> p = empirical_prior(ab)
    >>> float(p.sum()), float(p.max())
    (1.0, 0.5)
    """
    if isinstance(ab_batches, torch.Tensor):
        ab_batches = [ab_batches]
    elif not hasattr(ab_batches, "__iter__") or isinstance(ab_batches, (str, bytes)):
        raise TypeError(f"ab_batches must be an ab tensor (B, 2, H, W) or an iterable of them, "
                        f"got {type(ab_batches).__name__}")
    counts: torch.Tensor | None = None
    for i, ab in enumerate(ab_batches):
        check_tensor(ab, f"ab_batches[{i}]")
        if bins is not None:
            check_bins(bins)
        n = NUM_BINS if bins is None else bins.shape[0]
        hist = torch.bincount(nearest_bin(ab, bins).reshape(-1), minlength=n).to("cpu",
                                                                               torch.float64)
        counts = hist if counts is None else counts + hist
    if counts is None or counts.sum() == 0:
        raise ValueError("ab_batches holds no pixels: pass at least one non-empty (B, 2, H, W) batch")
    return counts / counts.sum()


def check_distribution(p: torch.Tensor, name: str) -> None:
    """Check a colour distribution over the bins: a float tensor ``(Q,)``, finite, non-negative,
    with a positive sum (it need not be normalised)."""
    check_tensor(p, name)
    check_float(p, name)
    if p.ndim != 1 or p.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D distribution (Q,), got shape {tuple(p.shape)}")
    check_finite(p, name)
    if bool((p < 0).any()) or not float(p.sum()) > 0:
        raise ValueError(f"{name} must be non-negative with a positive sum")


def smooth_prior(p: torch.Tensor, sigma: float = 5.0, bins: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Smooth a bin distribution with a Gaussian over the ab distance between bin centres.

    ``p~_q = sum_j K_qj p_j / sum_j p_j`` with ``K_qj = exp(-|c_q - c_j|^2 / 2 sigma^2) /
    sum_i exp(-|c_i - c_j|^2 / 2 sigma^2)``: every bin spreads its mass over its neighbours in the
    ab plane (columns of K sum to 1, so total mass is kept). The neighbourhood is geometric: bins
    next to each other in the table but far apart in ab never exchange mass (smoothing along the
    array index, as one public implementation does, is wrong).

    Args:
        p: ``(Q,)`` non-negative weights or distribution.
        sigma: Gaussian width in Lab units, > 0.
        bins: ``(Q, 2)`` bin centres; default :func:`colorlab.gamut.ab_bins`.

    Returns:
        ``(Q,)`` float64 distribution that sums to 1.

    >>> p = torch.zeros(313, dtype=torch.float64); p[156] = 1.0
    >>> ps = smooth_prior(p)
    >>> round(float(ps.sum()), 6), bool(ps[156] < 1), int(ps.argmax())
    (1.0, True, 156)
    """
    check_distribution(p, "p")
    sigma = check_positive(sigma, "sigma")
    centres = ab_bins(torch.float64) if bins is None else bins
    check_bins(centres)
    if centres.shape[0] != p.shape[0]:
        raise ValueError(f"p has {p.shape[0]} entries but there are {centres.shape[0]} bins")
    centres = centres.to("cpu", torch.float64)
    # exp(-d^2 / 2 sigma^2): the diagonal is exp(0) = 1 for any sigma, so a tiny sigma gives the
    # identity (no smoothing) and a huge one a uniform kernel, never 0/0 or an overflow
    d2 = torch.cdist(centres, centres).square()
    kernel = torch.exp(torch.where(d2 > 0, -d2 / (2 * sigma * sigma), 0.0))
    kernel = kernel / kernel.sum(dim=0, keepdim=True)
    out = kernel @ p.to("cpu", torch.float64)
    return out / out.sum()


def rebalance_weights(p_smoothed: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights ``w ∝ ((1 - lam) p + lam / Q)^-1`` with ``sum_q p_q w_q = 1``.

    Args:
        p_smoothed: ``(Q,)`` smoothed prior (see :func:`smooth_prior`); normalised internally.
        lam: mixing weight in [0, 1]: 0 is full inverse-frequency weighting, 1 is uniform weights.

    Returns:
        ``(Q,)`` float64 weights, all finite and > 0. With ``lam = 0`` a bin of zero mass would get
        an infinite weight; it gets the largest finite weight instead (such a bin never occurs under
        ``p`` so the normalisation is unaffected).

    >>> w = rebalance_weights(torch.full((313,), 1 / 313, dtype=torch.float64))
    >>> round(float(w.min()), 6), round(float(w.max()), 6)
    (1.0, 1.0)
    """
    check_distribution(p_smoothed, "p_smoothed")
    lam = check_unit_interval(lam, "lam")
    p = p_smoothed.to("cpu", torch.float64)
    p = p / p.max()  # first, so that the sum of huge entries cannot overflow
    p = p / p.sum()
    mix = (1 - lam) * p + lam / p.numel()
    w = torch.where(mix > 0, 1.0 / mix.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    if bool((mix == 0).any()):
        w = torch.where(mix > 0, w, w.max())
    return w / (p * w).sum()


def prior_from_images(images: torch.Tensor, sigma: float = 5.0, lam: float = 0.5,
                      batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The empirical prior, its smoothed version and the rebalancing weights of a set of images.

    Args:
        images: uint8 sRGB ``(N, 3, H, W)`` (a training split); converted to Lab ``batch_size``
            images at a time, so the whole set is never held in Lab.
        sigma, lam: of :func:`smooth_prior` and :func:`rebalance_weights`.

    Returns:
        ``(p, p_smooth, weights)``, each ``(Q,)`` float64.

    >>> p, ps, w = prior_from_images(torch.full((2, 3, 8, 8), 128, dtype=torch.uint8))
    >>> int(p.argmax()) == int(ps.argmax()), round(float((ps * w).sum()), 6)
    (True, 1.0)
    """
    from .transforms import to_lab

    check_images(images)
    batch_size = check_positive_int(batch_size, "batch_size")
    p = empirical_prior(to_lab(chunk)[1] for chunk in images.split(batch_size))
    p_smooth = smooth_prior(p, sigma)
    return p, p_smooth, rebalance_weights(p_smooth, lam)
