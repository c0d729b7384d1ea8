"""The quantized ab gamut: Zhang et al.'s 313 bins and exact k-nearest-bin search.

Derived in ``book/03_ab_gamut.ipynb``. The ab plane is cut into squares of side ``grid = 10``
(Lab units); a bin is represented by its centre. Zhang et al. keep the 313 bins of their table
``pts_in_hull.npy`` (shipped with colorlab under its BSD-2 notice); 8-bit sRGB colours actually
reach 261 of them (:func:`srgb_reachable_bins`) and the other 52 form a one-bin ring around those.

Because the bins sit on a regular lattice, the k nearest bins of a point are found among the 16
lattice sites around it (a 4x4 block), which is ~20x less work than measuring the distance to all
313 bins. The search is exact: points whose k-th candidate is not provably closer than every site
outside that block (far outside the gamut) fall back to a full search.

Finding out whether any point needs the fallback reads one flag back from the device, which on a
GPU waits for every queued kernel. For the ab of sRGB colours the block always suffices up to
``k = SRGB_EXACT_K`` (``tests/test_gamut.py`` checks it, with a margin of several Lab units), so
the trainer, whose targets are such colours, searches inside :func:`deferred_exactness`: the
flags are kept on the device and read once per epoch.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from importlib import resources

import numpy as np
import torch

from ._validation import (check_bins, check_device, check_finite, check_finite_result,
                          check_float, check_nonempty, check_shape, check_tensor)

__all__ = ["ab_bins", "srgb_reachable_bins", "nearest_bin", "nearest_bins", "GRID", "NUM_BINS",
           "SRGB_EXACT_K", "deferred_exactness", "all_exact", "needs_full_search"]

GRID = 10.0  #: side of an ab bin, in Lab units
NUM_BINS = 313  #: number of bins of Zhang et al.'s gamut
_BLOCK = 2  # lattice margin: candidates reach 2 sites beyond the nearest one
#: the largest k for which the 16-site search is exact for the ab of every sRGB colour in
#: [0, 1]^3: at k = 7 the nearest point that needs the full search lies 1.9 Lab units outside
#: that gamut (7.8 at k = 5), at k = 8 nine of the 16.7 million 8-bit colours need it
#: (``tests/test_gamut.py``)
SRGB_EXACT_K = 7
_FAR = 1e6  # a squared distance (Lab units^2) beyond any bin, for a site that is missing
_DEFERRED: contextvars.ContextVar[list | None] = contextvars.ContextVar("colorlab_exactness",
                                                                         default=None)


@contextlib.contextmanager
def deferred_exactness(flags: list | None) -> Iterator[list | None]:
    """Inside the block, :func:`nearest_bins` on an accelerator does not read back whether its
    fast search was exact (a wait for the device's whole queue): it appends that flag, a 0-dim
    bool tensor on the device, to ``flags`` and returns the fast search's result (where it is
    not exact, valid indices and finite distances, but not the nearest bins). Check the flags
    afterwards with :func:`all_exact` (one read for all of them): where one is false, the
    results of the block are not exact for some points, and must be treated as an error.
    ``flags=None`` makes the search exact inside the block again, whatever an enclosing block
    deferred.

    Meant for ab values known to be sRGB colours and ``k <= SRGB_EXACT_K``, for which every flag
    is true; on the CPU, where a read costs nothing, the search stays exact as everywhere else.

    >>> flags = []
    >>> with deferred_exactness(flags):
    ...     idx, _ = nearest_bins(torch.zeros(1, 2, 2, 2), k=5)
    >>> all_exact(flags), idx.shape  # on the CPU nothing is deferred
    (True, torch.Size([1, 5, 2, 2]))
    """
    token = _DEFERRED.set(flags)
    try:
        yield flags
    finally:
        _DEFERRED.reset(token)


def all_exact(flags: list) -> bool:
    """Whether every flag that :func:`deferred_exactness` collected is true (one read from the
    device; ``True`` for none)."""
    return not flags or bool(torch.stack(list(flags)).all())


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


class _Lattice:
    """Lookup table from lattice site to bin index for bins on a regular square grid."""

    def __init__(self, bins: np.ndarray) -> None:
        coords = np.unique(bins.ravel())
        steps = np.diff(coords)
        self.spacing = float(steps.min()) if steps.size else 1.0
        self.origin = bins.min(axis=0) - _BLOCK * self.spacing
        cells = (bins - self.origin) / self.spacing
        self.lex_order = torch.from_numpy(np.lexsort((bins[:, 1], bins[:, 0])))
        self.shape = tuple(int(v) for v in np.round(cells).max(axis=0) + _BLOCK + 1)
        self.valid = bool(np.allclose(cells, np.round(cells), atol=1e-6)) and \
            len(np.unique(np.round(cells), axis=0)) == len(bins) and \
            self.shape[0] * self.shape[1] <= 64 * len(bins) + 1024  # a sparse "lattice": no
        if not self.valid:
            return
        cells = np.round(cells).astype(np.int64)
        table = np.full(self.shape, -1, dtype=np.int64)
        table[cells[:, 0], cells[:, 1]] = np.arange(len(bins))
        # neighbours[site * 4 + quadrant] = the 16 candidate bins (-1: none) of _lattice_search,
        # quadrant = 2 [f_a < 0] + [f_b < 0], in lexicographic (a, b) order
        pad = np.pad(table, 2, constant_values=-1)
        rows = np.full((table.size, 4, 16), -1, dtype=np.int64)
        ii, jj = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        for quadrant in range(4):
            da, db = quadrant // 2, quadrant % 2
            cands = [pad[ii + 2 + i - da, jj + 2 + j - db].ravel()
                     for i in range(-1, 3) for j in range(-1, 3)]
            rows[:, quadrant, :] = np.stack(cands, axis=1)
        self.neighbours = torch.from_numpy(rows.reshape(-1, 16))
        self._on_device: dict = {}

    def on(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """``(origin, neighbours, lo, hi)`` on ``device``, copied once: a training step on a GPU
        then moves nothing between host and device."""
        key = (str(device), dtype)
        if key not in self._on_device:
            self._on_device[key] = (
                torch.as_tensor(self.origin, dtype=dtype).to(device),
                self.neighbours.to(device),
                torch.full((2,), float(_BLOCK), dtype=dtype).to(device),
                (torch.tensor(self.shape, dtype=dtype) - 1 - _BLOCK).to(device))
        return self._on_device[key]


@functools.lru_cache(maxsize=8)
def _lattice(key: bytes, n: int) -> _Lattice:
    return _Lattice(np.frombuffer(key, dtype=np.float64).reshape(n, 2))


def _lattice_for(bins: torch.Tensor) -> _Lattice:
    array = bins.detach().to("cpu", torch.float64).contiguous().numpy()
    return _lattice(array.tobytes(), len(array))


def _full_search(points: torch.Tensor, bins: torch.Tensor, lattice: _Lattice, k: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest bins of ``points`` ``(N, 2)`` by distance to every bin."""
    order = lattice.lex_order.to(points.device)
    ordered = bins[order].to(points.dtype)
    idx_out, d_out = [], []
    for chunk in points.split(8192):
        d2 = torch.cdist(chunk, ordered).square()
        d2, pos = torch.sort(d2, dim=1, stable=True)
        idx_out.append(order[pos[:, :k]])
        d_out.append(d2[:, :k])
    return torch.cat(idx_out), torch.cat(d_out)


def _syncs_are_costly(device: torch.device) -> bool:
    """Whether reading a value back from ``device`` stalls a queue of kernels (an accelerator):
    there the search takes the branch-free path."""
    return device.type != "cpu"


def _lattice_search(points: torch.Tensor, lattice: _Lattice, k: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k nearest bins among 16 lattice sites around each point (exact where ``exact`` is true).

    With ``c`` the nearest site and ``f = p - c`` (``|f| <= s/2`` per coordinate), the candidates
    are the 4x4 sites ``c + s (i, j)`` with ``i`` in ``{-1, 0, 1, 2}`` when ``f_a >= 0`` and in
    ``{-2, -1, 0, 1}`` otherwise (likewise ``j``). Any other site is at least
    ``min(2s + |f|, 3s - |f|)`` away in one coordinate; where the k-th candidate is not nearer than
    that (far outside the gamut), ``exact`` is false and the caller falls back to
    :func:`_full_search`. The candidates are listed in lexicographic (a, b) order and sorted
    stably by distance, so equal distances keep that order.
    """
    device, s, width = points.device, lattice.spacing, lattice.shape[1]
    origin, neighbours, lo, hi = lattice.on(device, points.dtype)
    base = torch.arange(-1, 3, device=device, dtype=points.dtype)  # (4,)
    idx = torch.empty(points.shape[0], k, dtype=torch.long, device=device)
    dist = torch.empty(points.shape[0], k, dtype=points.dtype, device=device)
    exact = torch.empty(points.shape[0], dtype=torch.bool, device=device)
    step = 16384 if device.type == "cpu" else 1 << 22  # cache-sized blocks on the CPU
    for start in range(0, points.shape[0], step):
        p = points[start:start + step]
        n = p.shape[0]
        site = torch.maximum(torch.minimum(torch.round((p - origin) / s), hi), lo)
        frac = p - (origin + site * s)  # (n, 2): offset from the nearest site, Lab units
        offset = base - (frac < 0).to(p.dtype)[:, :, None]  # (n, 2, 4) ascending site offsets
        sq = (offset * s - frac[:, :, None]).square_()  # (n, 2, 4) squared distance per axis
        d2 = (sq[:, 0, :, None] + sq[:, 1, None, :]).view(n, 16)
        row = (site[:, 0] * width + site[:, 1]).long() * 4 + (frac[:, 0] < 0).long() * 2 \
            + (frac[:, 1] < 0).long()
        cand = neighbours.index_select(0, row)
        d2.masked_fill_(cand < 0, float("inf"))
        # topk is fast but orders equal values arbitrarily: rows with a tie among the first k + 1
        # (rare: points exactly between sites) are redone with a stable sort
        m = min(k + 1, 16)
        if _syncs_are_costly(device):  # branch-free: sorting 16 values per point is cheap
            vals, pos = (t[:, :m] for t in torch.sort(d2, dim=1, stable=True))
        else:
            vals, pos = torch.topk(d2, m, dim=1, largest=False, sorted=True)
            tied = (vals[:, 1:] == vals[:, :-1]).any(dim=1).nonzero().squeeze(1)
            if tied.numel():
                vals[tied], pos[tied] = (t[:, :m] for t in torch.sort(d2[tied], dim=1,
                                                                      stable=True))
        idx[start:start + n] = cand.gather(1, pos[:, :k])
        dist[start:start + n] = vals[:, :k]
        mag = frac.abs()
        bound = torch.minimum(2 * s + mag, 3 * s - mag).amin(dim=1).clamp_min(0)
        exact[start:start + n] = vals[:, k - 1] < bound * bound
    return idx, dist, exact


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
    """Exact k nearest bin centres of every ab value, nearest first.

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
    lattice = _lattice_for(bins)
    if lattice.valid and k < 16:  # the 16 lattice candidates serve k <= 15 (one spare for ties)
        idx, d2, exact = _lattice_search(points, lattice, k)
        deferred = _DEFERRED.get()
        if deferred is not None and _syncs_are_costly(points.device):
            deferred.append(exact.all())  # read later, once (deferred_exactness)
            # where it is not exact a site may be missing (index -1, distance inf): valid values
            # until the check stops the caller, so that no kernel fails first (exact points keep
            # theirs)
            idx.clamp_(min=0)
            d2.nan_to_num_(posinf=_FAR)
        elif not bool(exact.all()):
            miss = (~exact).nonzero().squeeze(1)
            idx[miss], d2[miss] = _full_search(points[miss], bins.to(ab.device), lattice, k)
    else:
        idx, d2 = _full_search(points, bins.to(ab.device), lattice, k)
    shape = (*lead, h, w, k)
    check_finite_result(d2, "ab or bins", "ab values and bin centres are in Lab units, about "
                        "-128 to 128")
    return (idx.reshape(shape).movedim(-1, -3), d2.reshape(shape).movedim(-1, -3))


def needs_full_search(ab: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Where the 16-site search of the 313 bins cannot prove its ``k`` nearest bins exact, so
    that :func:`nearest_bins` measures all 313 distances instead: ``(*, 2, H, W)`` ab (Lab
    units) -> ``(*, H, W)`` bool. For the ab of sRGB colours it is false everywhere up to
    ``k = SRGB_EXACT_K`` (``book/03_ab_gamut.ipynb`` counts it over the 8-bit colours).

    >>> needs_full_search(torch.tensor([[[[0.0, 300.0]], [[0.0, 0.0]]]]), k=5).tolist()
    [[[False, True]]]
    """
    points = _points(ab)
    _check_k(k, 15, "the 16-site search")
    _, _, exact = _lattice_search(points, _lattice_for(ab_bins(torch.float64)), k)
    return (~exact).reshape(ab.shape[:-3] + ab.shape[-2:])


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest bin of every ab value: ``(*, 2, H, W)`` -> ``(*, H, W)`` int64.

    >>> ab = torch.zeros(1, 2, 2, 2)
    >>> bins = ab_bins()
    >>> bins[nearest_bin(ab)].shape
    torch.Size([1, 2, 2, 2])
    """
    idx, _ = nearest_bins(ab, 1, bins)
    return idx.squeeze(-3)
