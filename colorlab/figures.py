"""The report's figures drawn from a reproduction: Fig. 1 (the network), Fig. 4 (loss curves),
Fig. 5 (cumulative error) and the saturation histograms (``book/06_network.ipynb`` to
``book/08_evaluation.ipynb``). Which example images Fig. 3 and Fig. 6 show, and their panels, is
:mod:`colorlab.failure_modes`; figures drawn from library objects alone (bins, priors, Lab
channels) are in :mod:`colorlab.plots`.
"""
from __future__ import annotations

import json
from pathlib import Path

# the choice of Fig. 3's and Fig. 6's images lived here before colorlab.failure_modes: still importable
from .failure_modes import FAILURE_MODES, image_scores, save_figure_panels, select
from .plots import save_png
from .report import METHODS, RUNS

__all__ = ["plot_network", "plot_loss_curves", "plot_cumulative", "plot_saturation_histograms",
           "save_saturation_figure", "image_scores", "select", "save_figure_panels",
           "FAILURE_MODES"]


def _count(n: int) -> str:
    """A parameter count in a box's few characters, never rounded to zero.

    >>> _count(24_788_032), _count(37_696), _count(512)
    ('24.8M', '38k', '512')
    """
    if n >= 100_000:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.0f}k" if n >= 1_000 else str(n)


def plot_network(blocks: list[dict], ax=None):
    """Fig. 1: one box per block, height ~ resolution, width ~ channels, annotated.

    ``blocks``: rows of :func:`colorlab.models.block_table`.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> from colorlab.models import ColorizationNet, block_table
    >>> len(plot_network(block_table(ColorizationNet(width=0.125), 32)).patches)
    9
    """
    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.8))
    x = 0.0
    top = max(b["shape"][1] for b in blocks)
    for b in blocks:
        c, h, _ = b["shape"]
        width = 0.4 + c / 160
        height = h / top * 2.6
        colour = "#f0b27a" if b["block"] == "head" else "#85c1e9"
        ax.add_patch(mpatches.FancyBboxPatch((x, -height / 2), width, height,
                                             boxstyle="round,pad=0.02", fc=colour, ec="0.3"))
        ax.text(x + width / 2, height / 2 + 0.12, b["block"].replace("block ", "b"),
                ha="center", fontsize=12)
        ax.text(x + width / 2, -height / 2 - 0.3, f"{c}\n{h}x{h}\n{_count(b['params'])}",
                ha="center", va="top", fontsize=11)
        x += width + 0.35
    ax.set_xlim(-0.2, x)
    ax.set_ylim(-2.9, 1.9)
    ax.axis("off")
    return ax


def plot_loss_curves(results: str | Path, dataset: str, axes=None):
    """Fig. 4: train and validation loss per epoch of the three runs on ``dataset``.

    ``results``: a results folder written by :func:`colorlab.reproduce.reproduce`.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(9.5, 3))
    for ax, (run, name) in zip(axes, RUNS.items()):
        history = json.loads((Path(results) / dataset / run / "history.json").read_text())
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], label="train")
        ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
        ax.set_title(f"{name} ({dataset})", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("L2 loss" if run == "l2" else "cross-entropy")
        ax.legend(fontsize=10)
    return axes


def plot_cumulative(metrics: dict, kind: str = "cumulative_per_pixel", ax=None, title: str = ""):
    """Fig. 5: cumulative ab-error curves of every method (thresholds 0..150).

    ``metrics``: the ``metrics.json`` of a results folder (see :mod:`colorlab.reproduce`).

    >>> import matplotlib; matplotlib.use("Agg")
    >>> curve = {"cumulative_per_pixel": [i / 150 for i in range(151)], "auc": 50.0}
    >>> m = {k: curve for k in METHODS}
    >>> len(plot_cumulative(m).get_lines())
    5
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name in METHODS:
        curve = metrics[name][kind]
        ax.plot(range(len(curve)), curve, label=f"{name} (AuC {metrics[name]['auc']:.1f})")
    ax.set_xlabel("threshold t on the ab error (Lab units)")
    ax.set_ylabel("fraction of pixels" if kind.endswith("pixel") else "fraction of images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=10, loc="lower right")
    ax.grid(alpha=0.3)
    return ax


#: line styles of the saturation histograms: the truth in black, the trained models in colour
_SATURATION_STYLE = {"Ground truth": ("0.1", "-"), "L2": ("#1f77b4", "--"),
                     "Class": ("#ff7f0e", "-."), "Class+rebal": ("#d62728", "-")}


def plot_saturation_histograms(metrics: dict, ax=None, title: str = ""):
    """The HSV saturation histogram of the ground truth and of each trained model's colorizations
    (``metrics.json``'s ``saturation_histogram``: the share of test pixels in each of 20
    saturation intervals of [0, 1], :func:`colorlab.colorfulness.saturation_histogram`), on a
    log scale: desaturated colorizations pile up in the first intervals
    (``book/08_evaluation.ipynb``).

    >>> import matplotlib; matplotlib.use("Agg")
    >>> h = [0.5, 0.3, 0.2]
    >>> ax = plot_saturation_histograms({"Ground truth": {"saturation_histogram": h},
    ...                                  "L2": {"saturation_histogram": h}})
    >>> len(ax.lines)
    2
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.6))
    for name, (colour, style) in _SATURATION_STYLE.items():
        hist = metrics.get(name, {}).get("saturation_histogram")
        if not hist:
            continue
        bins = len(hist)
        centres = [(i + 0.5) / bins for i in range(bins)]
        chroma = metrics[name].get("mean_chroma")
        label = name + (f" (chroma {chroma:.1f})" if chroma is not None else "")
        ax.plot(centres, [max(v, 1e-6) for v in hist], style, color=colour, label=label,
                marker="o", markersize=3)
    ax.set_yscale("log")
    ax.set_xlabel("HSV saturation")
    ax.set_ylabel("share of pixels")
    ax.set_xlim(0, 1)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=9)
    return ax


def save_saturation_figure(metrics: dict, path: str | Path) -> str:
    """:func:`plot_saturation_histograms` saved as a PNG at ``path`` (a bare ``Figure``, so the
    caller's matplotlib backend is left alone); returns the file name."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6))
    plot_saturation_histograms(metrics, figure.add_subplot())
    figure.tight_layout()
    save_png(figure, Path(path))
    return Path(path).name
