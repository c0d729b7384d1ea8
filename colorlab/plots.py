"""Figures of the report drawn from library objects (used by the book's chapters).

* :func:`plot_ab_bins`: the quantized ab gamut, each bin in its colour (report Fig. 2a).
* :func:`plot_prior`: a distribution over the bins on the ab grid, log scale (Fig. 2b);
  :func:`plot_priors`: several side by side.
* :func:`show_lab_channels`, :func:`show_colorizations`: image grids.
* :func:`save_png`: a figure saved atomically, as the results folder's figures are.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write_bytes
from .color import lab_to_rgb
from .gamut import GRID, ab_bins

__all__ = ["plot_ab_bins", "plot_prior", "plot_priors", "bin_grid", "show_lab_channels",
           "show_colorizations", "save_png"]


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    return ax


def bin_grid(values: torch.Tensor, bins: torch.Tensor | None = None, fill: float = np.nan
             ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Place per-bin values ``(Q, ...)`` on the 2-D ab grid.

    Returns ``(grid, extent)``: ``grid`` has shape ``(n_b, n_a, ...)`` (rows = b ascending,
    columns = a ascending; cells without a bin hold ``fill``) and ``extent`` is the
    ``(a_min, a_max, b_min, b_max)`` of the cell borders, for ``imshow(origin="lower")``.

    >>> grid, extent = bin_grid(torch.arange(313.0))
    >>> grid.shape, extent
    ((22, 20), (-95.0, 105.0, -115.0, 105.0))
    """
    q = (ab_bins(torch.float64) if bins is None else bins.double()).cpu().numpy()
    v = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else \
        np.asarray(values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] != len(q):
        raise ValueError(f"values must have one entry per bin, shape ({len(q)}, ...), got "
                         f"{v.shape}")
    ia = np.round((q[:, 0] - q[:, 0].min()) / GRID).astype(int)
    ib = np.round((q[:, 1] - q[:, 1].min()) / GRID).astype(int)
    grid = np.full((ib.max() + 1, ia.max() + 1, *v.shape[1:]), fill, dtype=np.float64)
    grid[ib, ia] = v
    half = GRID / 2
    extent = (q[:, 0].min() - half, q[:, 0].max() + half, q[:, 1].min() - half,
              q[:, 1].max() + half)
    return grid, tuple(float(e) for e in extent)


def plot_ab_bins(bins: torch.Tensor | None = None, L: float = 50.0, highlight=None, ax=None,
                 title: str | None = None):
    """Draw the bins, each filled with the sRGB colour of ``(L, a, b)`` (report Fig. 2a).

    ``highlight``: optional ``(n, 2)`` subset of bin centres (e.g. the sRGB-reachable bins); the
    other bins are hatched, which shows the 52-bin ring of Zhang et al.'s table.
    Returns the matplotlib axes.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> plot_ab_bins(L=50).get_title()
    '313 ab bins at L = 50'
    """
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    q = ab_bins(torch.float64) if bins is None else bins.double().cpu()
    lab = torch.cat([torch.full((len(q), 1), float(L), dtype=torch.float64), q], dim=1)
    rgb = lab_to_rgb(lab.T.reshape(1, 3, 1, -1))[0, :, 0].T  # (Q, 3)
    grid, extent = bin_grid(rgb, q, fill=1.0)
    ax.imshow(grid, origin="lower", extent=extent, interpolation="nearest")
    if highlight is not None:
        keep = {tuple(v) for v in np.round(np.asarray(highlight, dtype=float)).astype(int).tolist()}
        for a, b in np.round(q.numpy()).astype(int).tolist():
            if (a, b) not in keep:
                ax.add_patch(mpatches.Rectangle((a - GRID / 2, b - GRID / 2), GRID, GRID,
                                                fill=False, hatch="////", linewidth=0.3,
                                                edgecolor="0.25"))
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(title or f"{len(q)} ab bins at L = {L:g}")
    ax.set_aspect("equal")
    return ax


def plot_prior(p: torch.Tensor, bins: torch.Tensor | None = None, ax=None, title: str = "",
               log: bool = True, cmap: str = "viridis"):
    """Draw a distribution over the bins on the ab grid, ``log10`` scale by default (Fig. 2b).

    Bins with zero mass are left blank. Returns the matplotlib image (for a colorbar).

    >>> import matplotlib; matplotlib.use("Agg")
    >>> plot_prior(torch.full((313,), 1 / 313)).get_array().shape
    (22, 20)
    """
    ax = _axes(ax)
    values = p.detach().cpu().double()
    if log:
        values = torch.where(values > 0, values.clamp_min(1e-300).log10(),
                             torch.tensor(float("nan"), dtype=torch.float64))
    grid, extent = bin_grid(values, bins)
    image = ax.imshow(grid, origin="lower", extent=extent, interpolation="nearest", cmap=cmap)
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(title)
    ax.set_aspect("equal")
    return image


def plot_priors(priors: dict[str, torch.Tensor], bins: torch.Tensor | None = None,
                panel_width: float = 3.3):
    """One :func:`plot_prior` panel per distribution, side by side on a shared b axis, with one
    ``log10 p`` colorbar (report Fig. 2b, ``book/03_ab_gamut.ipynb``). The layout is
    constrained, so no panel's tick labels run into its neighbour.

    Args:
        priors: name -> ``(313,)`` distribution (the panel titles, in order).
        panel_width: inches per panel; the figure is 3.4 inches high.

    Returns the figure.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> p = torch.full((313,), 1 / 313)
    >>> len(plot_priors({"faces": p, "fruits": p}).axes)  # two panels and the colorbar
    3
    """
    import matplotlib.pyplot as plt

    if not isinstance(priors, dict) or not priors:
        raise ValueError(f"priors must be a non-empty dict of name -> (313,) distribution, got "
                         f"{priors!r:.60}")
    fig, axes = plt.subplots(1, len(priors), figsize=(panel_width * len(priors), 3.4),
                             sharey=True, layout="constrained", squeeze=False)
    for i, (ax, (name, p)) in enumerate(zip(axes[0], priors.items())):
        image = plot_prior(p, bins, ax=ax, title=name)
        if i:
            ax.set_ylabel("")  # the panels share the b axis of the first
    fig.colorbar(image, ax=axes[0].tolist(), label="log10 p", shrink=0.8)
    return fig


def _to_numpy_image(rgb: torch.Tensor) -> np.ndarray:
    return rgb.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()


def show_lab_channels(lab: torch.Tensor, axes=None):
    """Show ``lab`` ``(3, H, W)`` as four panels: colour, L, L with a only, L with b only.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> len(show_lab_channels(torch.zeros(3, 8, 8)))
    4
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(6.8, 2.1))
    zero = torch.zeros_like(lab[:1])
    mid = torch.full_like(zero, 60.0)
    panels = [("sRGB", lab), ("L (a = b = 0)", torch.cat([lab[:1], zero, zero])),
              ("a (at L = 60, b = 0)", torch.cat([mid, lab[1:2], zero])),
              ("b (at L = 60, a = 0)", torch.cat([mid, zero, lab[2:3]]))]
    for ax, (name, x) in zip(axes, panels):
        ax.imshow(_to_numpy_image(lab_to_rgb(x[None])[0]))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return axes


def show_colorizations(L: torch.Tensor, columns: dict[str, torch.Tensor], titles=None,
                       size: float = 1.8, figure=None):
    """Grid of images: one row per image, one column per method.

    Args:
        L: ``(N, 1, H, W)`` lightness shared by all methods.
        columns: name -> ab ``(N, 2, H, W)`` (use the true ab for "Ground truth").
        titles: optional row labels.
        figure: draw into this ``matplotlib.figure.Figure`` instead of a new pyplot figure (to save
            a file without touching pyplot's backend, e.g. inside a running notebook).
    Returns the matplotlib figure.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> L, ab = torch.full((2, 1, 8, 8), 50.0), torch.zeros(2, 2, 8, 8)
    >>> len(show_colorizations(L, {"truth": ab, "gray": ab}).axes)
    4
    """
    n, names = L.shape[0], list(columns)
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    fig = figure
    fig.set_size_inches(size * len(names), size * n)
    axes = fig.subplots(n, len(names), squeeze=False)
    for j, name in enumerate(names):
        rgb = lab_to_rgb(torch.cat([L.float(), columns[name].float()], dim=1))
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(_to_numpy_image(rgb[i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0 and titles is not None:
                ax.set_ylabel(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def save_png(figure, path: str | Path) -> None:
    """Write a matplotlib ``figure`` as a 100-dpi PNG at ``path``, atomically: a reader never sees
    half a file, and a failed write leaves the previous one
    (:func:`colorlab.checkpoint.atomic_write_bytes`).

    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_png(Figure(figsize=(1, 1)), Path(d) / "f.png")
    ...     (Path(d) / "f.png").read_bytes()[:4]
    b'\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(buffer.getvalue(), Path(path))
