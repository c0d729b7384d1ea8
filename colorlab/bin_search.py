"""Exact k-nearest-bin search for bins on a square lattice (derived in ``book/03_ab_gamut.ipynb``).

:func:`colorlab.gamut.nearest_bins` checks its input and searches here (``_k_nearest``). Because
Zhang et al.'s 313 ab bins sit on a regular lattice, the k nearest bins of a point are found among
the 16 lattice sites around it (a 4x4 block), which is ~20x less work than measuring the distance
to all 313 bins. The search is exact: points whose k-th candidate is not provably closer than every
site outside that block (far outside the gamut) fall back to a full search. Bins that are not on a
lattice, and k >= 16, get the full search.

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

import numpy as np
import torch

__all__ = ["SRGB_EXACT_K", "deferred_exactness", "all_exact"]

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
    """Inside the block, the search (and so :func:`colorlab.gamut.nearest_bins`,
    :func:`colorlab.encode.soft_encode` and the losses) on an accelerator does not read back
    whether its fast search was exact (a wait for the device's whole queue): it appends that flag,
    a 0-dim bool tensor on the device, to ``flags`` and returns the fast search's result (where it
    is not exact, valid indices and finite distances, but not the nearest bins). Check the flags
    afterwards with :func:`all_exact` (one read for all of them): where one is false, the results
    of the block are not exact for some points, and must be treated as an error. ``flags=None``
    makes the search exact inside the block again, whatever an enclosing block deferred.

    Meant for ab values known to be sRGB colours and ``k <= SRGB_EXACT_K``, for which every flag
    is true; on the CPU, where a read costs nothing, the search stays exact as everywhere else.

    >>> from colorlab.gamut import nearest_bins
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
    device; ``True`` for none).

    >>> all_exact([torch.tensor(True), torch.tensor(False)]), all_exact([])
    (False, True)
    """
    return not flags or bool(torch.stack(list(flags)).all())


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
    step = 16384 if device.type == "cpu" else 1 << 22  # cache-sized on a CPU
    for start in range(0, points.shape[0], step):
        p = points[start:start + step]
        n = p.shape[0]
        # the nearest site c, and f = p - c in Lab units: (n, 2)
        site = torch.round((p - origin) / s)
        site = torch.maximum(torch.minimum(site, hi), lo)
        frac = p - (origin + site * s)
        # per axis, the 4 site offsets on the side of f, ascending: (n, 2, 4)
        offset = base - (frac < 0).to(p.dtype)[:, :, None]
        # squared distance per axis, then of the 16 sites
        sq = (offset * s - frac[:, :, None]).square_()
        d2 = (sq[:, 0, :, None] + sq[:, 1, None, :]).view(n, 16)
        # the 16 candidate bins: the table's row for (site, quadrant of f)
        quadrant = (frac[:, 0] < 0).long() * 2 + (frac[:, 1] < 0).long()
        row = (site[:, 0] * width + site[:, 1]).long() * 4 + quadrant
        cand = neighbours.index_select(0, row)
        d2.masked_fill_(cand < 0, float("inf"))  # a site without a bin
        m = min(k + 1, 16)
        if _syncs_are_costly(device):
            # branch-free: sorting 16 values is cheap
            ordered = torch.sort(d2, dim=1, stable=True)
            vals, pos = (t[:, :m] for t in ordered)
        else:
            # topk is fast but orders equal values arbitrarily: rows with
            # a tie among the first k + 1 (points exactly between sites)
            # are redone
            vals, pos = torch.topk(d2, m, dim=1, largest=False, sorted=True)
            tie = (vals[:, 1:] == vals[:, :-1]).any(dim=1)
            tied = tie.nonzero().squeeze(1)
            if tied.numel():
                again = torch.sort(d2[tied], dim=1, stable=True)
                vals[tied], pos[tied] = (t[:, :m] for t in again)
        idx[start:start + n] = cand.gather(1, pos[:, :k])
        dist[start:start + n] = vals[:, :k]
        # exact where the k-th candidate is nearer than every other site
        mag = frac.abs()
        bound = torch.minimum(2 * s + mag, 3 * s - mag)
        bound = bound.amin(dim=1).clamp_min(0)
        exact[start:start + n] = vals[:, k - 1] < bound * bound
    return idx, dist, exact


def _k_nearest(points: torch.Tensor, bins: torch.Tensor, k: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact ``k`` nearest of the ``(Q, 2)`` ``bins`` to each of the ``(N, 2)`` ``points``
    (already checked: finite floats, ``1 <= k <= Q``), nearest first: ``(idx, d2)``, both
    ``(N, k)``, bin indices (int64) and squared distances (dtype of ``points``). Equal distances
    are ordered by the smaller a, then the smaller b. ``bins`` may be on any device; the
    lattice's lookup table is built once per set of bins (on the CPU) and copied once to each
    device.

    Inside :func:`deferred_exactness`, on an accelerator, it does not check that the 16-site
    search was exact: it appends that flag to the block's list instead.

    >>> bins = torch.tensor([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [10.0, 10.0]])
    >>> idx, d2 = _k_nearest(torch.tensor([[1.0, 7.0]]), bins, k=2)
    >>> idx.tolist(), d2.tolist()
    ([[1, 0]], [[10.0, 50.0]])
    """
    lattice = _lattice_for(bins)
    # the 16 candidates serve k <= 15 (one spare for ties)
    if not (lattice.valid and k < 16):
        return _full_search(points, bins.to(points.device), lattice, k)
    idx, d2, exact = _lattice_search(points, lattice, k)
    deferred = _DEFERRED.get()
    if deferred is not None and _syncs_are_costly(points.device):
        deferred.append(exact.all())  # read later, once (deferred_exactness)
        # where it is not exact, a site may be missing (index -1, distance
        # inf): valid values until the check stops the caller, so that no
        # kernel fails first (exact points keep theirs)
        idx.clamp_(min=0)
        d2.nan_to_num_(posinf=_FAR)
    elif not bool(exact.all()):
        miss = (~exact).nonzero().squeeze(1)
        full = _full_search(points[miss], bins.to(points.device), lattice, k)
        idx[miss], d2[miss] = full
    return idx, d2


def _needs_full(points: torch.Tensor, bins: torch.Tensor, k: int) -> torch.Tensor:
    """Where the 16-site search cannot prove its ``k`` nearest of the lattice ``bins`` exact:
    ``(N, 2)`` points -> ``(N,)`` bool (``1 <= k <= 15``).

    >>> bins = torch.tensor([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [10.0, 10.0]])
    >>> _needs_full(torch.tensor([[1.0, 7.0], [300.0, 0.0]]), bins, k=2).tolist()
    [False, True]
    """
    lattice = _lattice_for(bins)
    if not lattice.valid:
        raise ValueError("the 16-site search needs bins on a square lattice, such as "
                         "colorlab.gamut.ab_bins(); these bins get the full search anyway")
    _, _, exact = _lattice_search(points, lattice, k)
    return ~exact
