"""The quantized ab gamut: Zhang et al.'s 313 bins and their exact k-nearest-bin search.

Derived in ``book/03_ab_gamut.ipynb``. The ab plane is cut into squares of side ``grid = 10``
(Lab units); a bin is represented by its centre. Zhang et al. keep the 313 bins of their table
``pts_in_hull.npy`` (shipped with colorlab under its BSD-2 notice); 8-bit sRGB colours actually
reach 261 of them (:func:`srgb_reachable_bins`) and the other 52 form a one-bin ring around those.

:func:`nearest_bins` checks its input and searches with :mod:`colorlab.bin_search`: among the 16
lattice sites around each point, exact, with a full search where that cannot be proven.
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch

from ._validation import (check_bins, check_device, check_finite, check_finite_result,
                          check_float, check_nonempty, check_shape, check_tensor)
from .bin_search import _k_nearest, _needs_full

__all__ = ["ab_bins", "srgb_reachable_bins", "nearest_bin", "nearest_bins", "needs_full_search",
           "GRID", "NUM_BINS"]

GRID = 10.0  #: side of an ab bin, in Lab units
NUM_BINS = 313  #: number of bins of Zhang et al.'s gamut


@functools.lru_cache(maxsize=1)
def _reference_table() -> np.ndarray:
    with resources.files("colorlab.resources").joinpath("pts_in_hull.npy").open("rb") as fh:
        return np.load(fh).astype(np.float64)


def ab_bins(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
            ) -> torch.Tensor:
    """Return the 313 ab bin centres of Zhang et al. (2016), shape ``(313, 2)``, columns (a, b).

    The order is that of the reference table ``pts_in_hull.npy`` (sorted by a, then b), which is
    the order of the 313 output channels of every published model.

    >>> q = ab_bins()
    >>> q.shape, q[0].tolist(), q[-1].tolist()
    (torch.Size([313, 2]), [-90.0, 50.0], [100.0, 0.0])
    """
    if device is not None:
        device = check_device(device)
    return torch.as_tensor(_reference_table(), dtype=dtype, device=device)


@functools.lru_cache(maxsize=4)
def _srgb_reachable(grid: float) -> np.ndarray:
    from .color import rgb_to_lab

    levels = torch.arange(256, dtype=torch.float64) / 255.0
    g, b = torch.meshgrid(levels, levels, indexing="ij")
    seen: set[tuple[int, int]] = set()
    for r in levels:  # one plane of 65,536 colours at a time
        rgb = torch.stack((torch.full_like(g, float(r)), g, b)).unsqueeze(0)
        ab = rgb_to_lab(rgb)[0, 1:].reshape(2, -1)
        cells = torch.unique(torch.round(ab / grid).to(torch.int64), dim=1)
        seen.update(map(tuple, cells.T.tolist()))
    return np.array(sorted(seen), dtype=np.float64) * grid


def srgb_reachable_bins(grid: float = 10.0) -> torch.Tensor:
    """Derive which ab grid bins the 256^3 8-bit sRGB colours reach.

    Every colour is converted with :func:`colorlab.color.rgb_to_lab` in float64, a and b are
    rounded to the nearest multiple of ``grid`` and the distinct centres are kept. With
    ``grid=10`` this gives 261 bins, all among the 313 of :func:`ab_bins`. Takes a few seconds
    (cached afterwards).

    Returns:
        ``(n, 2)`` float32 tensor of bin centres, sorted by a, then b.

    >>> reach = srgb_reachable_bins()
    >>> len(reach)
    261
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, float)) or not 0.5 <= grid <= 256:
        raise ValueError(f"grid must be a number in [0.5, 256] (the ab spacing of the sampled "
                         f"sRGB colours, Lab units), got {grid!r}")
    return torch.as_tensor(_srgb_reachable(float(grid)), dtype=torch.float32)


def _points(ab: torch.Tensor) -> torch.Tensor:
    """The ab values of a checked ``(*, 2, H, W)`` tensor as points ``(N, 2)``, pixel-major."""
    check_tensor(ab, "ab")
    check_float(ab, "ab")
    check_shape(ab, "ab", min_ndim=3, channels=2, layout="(*, 2, H, W)")
    check_nonempty(ab, "ab")
    h, w = ab.shape[-2:]
    return ab.detach().reshape(-1, 2, h * w).transpose(1, 2).reshape(-1, 2)


def _check_k(k: object, most: int, why: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most:
        raise ValueError(f"k must be an integer from 1 to {most} ({why}), got {k!r}")


def nearest_bins(ab: torch.Tensor, k: int = 1, bins: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest bin centres of every ab value, nearest first (inside
    :func:`colorlab.bin_search.deferred_exactness` on an accelerator, exactness is checked
    afterwards, from the flags the block collects).

    Args:
        ab: float tensor ``(*, 2, H, W)`` of (a, b) values in Lab units.
        k: number of neighbours, ``1 <= k <= Q``.
        bins: ``(Q, 2)`` bin centres; default :func:`ab_bins`.

    Returns:
        ``(idx, d2)``, both ``(*, k, H, W)``: bin indices (int64) and squared distances (dtype of
        ``ab``), sorted by distance. Equal distances are ordered by the smaller a, then smaller b
        (for the reference table: the smaller bin index).

    >>> ab = torch.tensor([[[[3.0]], [[-2.0]]]])  # one pixel, a=3, b=-2
    >>> idx, d2 = nearest_bins(ab, k=2)
    >>> ab_bins()[idx.flatten()].tolist(), d2.flatten().tolist()
    ([[0.0, 0.0], [10.0, 0.0]], [13.0, 53.0])
    """
    points = _points(ab)
    check_finite(ab, "ab")
    bins = ab_bins(torch.float64) if bins is None else bins  # the lattice is built on the CPU
    check_bins(bins)
    _check_k(k, bins.shape[0], "the number of bins")
    lead, (h, w) = ab.shape[:-3], ab.shape[-2:]
    idx, d2 = _k_nearest(points, bins, k)
    shape = (*lead, h, w, k)
    check_finite_result(d2, "ab or bins", "ab values and bin centres are in Lab units, about "
                        "-128 to 128")
    return (idx.reshape(shape).movedim(-1, -3), d2.reshape(shape).movedim(-1, -3))


def needs_full_search(ab: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Where the 16-site search of the 313 bins cannot prove its ``k`` nearest bins exact, so
    that :func:`nearest_bins` measures all 313 distances instead: ``(*, 2, H, W)`` ab (Lab
    units) -> ``(*, H, W)`` bool. For the ab of sRGB colours it is false everywhere up to
    ``k =`` :data:`colorlab.bin_search.SRGB_EXACT_K` (``book/03_ab_gamut.ipynb`` counts it over the
    8-bit colours).

    >>> needs_full_search(torch.tensor([[[[0.0, 300.0]], [[0.0, 0.0]]]]), k=5).tolist()
    [[[False, True]]]
    """
    points = _points(ab)
    _check_k(k, 15, "the 16-site search")
    return _needs_full(points, ab_bins(torch.float64), k).reshape(ab.shape[:-3] + ab.shape[-2:])


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest bin of every ab value: ``(*, 2, H, W)`` -> ``(*, H, W)`` int64.

    >>> ab = torch.zeros(1, 2, 2, 2)
    >>> bins = ab_bins()
    >>> bins[nearest_bin(ab)].shape
    torch.Size([1, 2, 2, 2])
    """
    idx, _ = nearest_bins(ab, 1, bins)
    return idx.squeeze(-3)
