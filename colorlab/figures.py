"""The report's figures drawn from a reproduction: Fig. 1 (the network), Fig. 4 (loss curves),
Fig. 5 (cumulative error), the saturation histograms, and the measured choice of the example
images of Fig. 3 and Fig. 6 (``book/06_network.ipynb`` to ``book/09_successes_failures.ipynb``).
Figures drawn from library objects alone (bins, priors, Lab channels) are in :mod:`colorlab.plots`.

Fig. 3 shows successes and Fig. 6 five failure modes. Instead of choosing pictures by hand, each
figure shows the test images that score highest on a stated per-image measure:

* ``success``: per-image AuC, among images whose true colour is more saturated than the median
  (a grey image is trivially "well" colorized).
* ``colour_bias``: ``||mean(ŷ_ab) - mean(y_ab)||``, a global colour cast (Lab units).
* ``colour_deficiency``: mean true chroma minus mean predicted chroma (desaturation, Lab units).
* ``inconsistent_colouring``: mean ab-gradient magnitude of the prediction inside regions where
  both L and the true ab are flat (colour changing where nothing changes).
* ``edge_pollution``: mean ab error on luminance edges (top 10 % of ``|∇L|``) over the mean error.
* ``colour_bleeding``: mean ab error in a 1-3 pixel band beside luminance edges over the mean
  error (colour leaking across a boundary).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ._validation import check_finite, check_float, check_nonempty, check_shape, check_tensor
from .checkpoint import atomic_write_bytes
from .metrics import ab_error
from .plots import show_colorizations
from .report import METHODS, RUNS
from .transforms import to_lab

__all__ = ["plot_network", "plot_loss_curves", "plot_cumulative", "plot_saturation_histograms",
           "save_saturation_figure", "image_scores", "select", "save_figure_panels",
           "FAILURE_MODES"]


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
        ax.text(x + width / 2, -height / 2 - 0.3, f"{c}\n{h}x{h}\n{b['params'] / 1e6:.1f}M",
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
    _save_png(figure, Path(path))
    return Path(path).name


def _save_png(figure, path: Path) -> None:
    """Write ``figure`` as a 100-dpi PNG, atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(buffer.getvalue(), path)


FAILURE_MODES = ("colour_bias", "colour_deficiency", "inconsistent_colouring", "edge_pollution",
                 "colour_bleeding")


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W)``: central-difference gradient norm over all channels."""
    dx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0)) / 2
    dy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1)) / 2
    return (dx.square() + dy.square()).sum(dim=1).sqrt()


def image_scores(L: torch.Tensor, true_ab: torch.Tensor, pred_ab: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
    """Per-image scores ``(B,)`` for every criterion of Fig. 3 and Fig. 6 (``success`` and
    :data:`FAILURE_MODES`, plus ``chroma`` of the truth).

    >>> L = torch.rand(2, 1, 16, 16) * 100; ab = torch.randn(2, 2, 16, 16) * 20
    >>> s = image_scores(L, ab, ab * 0.5)
    >>> bool((s["colour_deficiency"] > 0).all()), sorted(s)[:3]
    (True, ['chroma', 'colour_bias', 'colour_bleeding'])
    """
    for name, x, channels in (("L", L, 1), ("true_ab", true_ab, 2), ("pred_ab", pred_ab, 2)):
        check_tensor(x, name)
        check_float(x, name)
        check_shape(x, name, ndim=4, channels=channels, channel_dim=1,
                    layout=f"(B, {channels}, H, W)")
        check_nonempty(x, name)
        check_finite(x, name)
    if not L.shape[-2:] == true_ab.shape[-2:] == pred_ab.shape[-2:] or \
            not L.shape[0] == true_ab.shape[0] == pred_ab.shape[0]:
        raise ValueError(f"L {tuple(L.shape)}, true_ab {tuple(true_ab.shape)} and pred_ab "
                         f"{tuple(pred_ab.shape)} must share batch size, height and width")
    if min(L.shape[-2:]) < 3:
        raise ValueError(f"image_scores needs images of at least 3x3 pixels, got "
                         f"{tuple(L.shape[-2:])}")
    L, true_ab, pred_ab = L.double(), true_ab.double(), pred_ab.double()
    err = ab_error(pred_ab, true_ab)
    mean_err = err.flatten(1).mean(1).clamp_min(1e-6)
    chroma_true = true_ab.norm(dim=1).flatten(1).mean(1)
    chroma_pred = pred_ab.norm(dim=1).flatten(1).mean(1)
    grad_L = _gradient_magnitude(L)
    threshold = torch.quantile(grad_L.flatten(1), 0.9, dim=1).view(-1, 1, 1)
    edges = grad_L >= threshold.clamp_min(1e-6)
    near = F.max_pool2d(edges[:, None].double(), 7, stride=1, padding=3)[:, 0] > 0
    band = near & ~edges
    grad_true, grad_pred = _gradient_magnitude(true_ab), _gradient_magnitude(pred_ab)
    flat = (grad_L < torch.quantile(grad_L.flatten(1), 0.5, dim=1).view(-1, 1, 1)) & \
        (grad_true < torch.quantile(grad_true.flatten(1), 0.5, dim=1).view(-1, 1, 1))

    def masked_mean(values, mask):
        return (values * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)

    return {
        "chroma": chroma_true,
        "colour_bias": (pred_ab.mean(dim=(2, 3)) - true_ab.mean(dim=(2, 3))).norm(dim=1),
        "colour_deficiency": chroma_true - chroma_pred,
        "inconsistent_colouring": masked_mean(grad_pred, flat),
        "edge_pollution": masked_mean(err, edges) / mean_err,
        "colour_bleeding": masked_mean(err, band) / mean_err,
    }


def select(scores: torch.Tensor, n: int, among: torch.Tensor | None = None,
           exclude: set[int] | None = None) -> list[int]:
    """Indices of the ``n`` highest ``scores`` (ties: lower index), optionally only where ``among``
    is true and never in ``exclude`` (so one image illustrates one mode).

    >>> select(torch.tensor([0.1, 0.9, 0.5, 0.9]), 2)
    [1, 3]
    """
    check_tensor(scores, "scores")
    check_shape(scores, "scores", ndim=1, layout="(N,)")
    check_finite(scores, "scores")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    exclude = exclude or set()
    out = [i for i in order if (among is None or bool(among[i])) and i not in exclude]
    return out[:n]


def _save_panel(path: Path, L: torch.Tensor, columns: dict, titles: list[str]) -> None:
    """Save one panel. A bare ``Figure`` (no pyplot) leaves the caller's matplotlib backend alone:
    switching it to Agg here would silence every later plot of a notebook that calls reproduce."""
    from matplotlib.figure import Figure

    _save_png(show_colorizations(L, columns, titles, size=1.6, figure=Figure()), path)


def save_figure_panels(out: str | Path, test_set, predictions: dict[str, torch.Tensor],
                       per_image_auc: list[float], n: int, model: str = "Class+rebal") -> dict:
    """Fig. 3 (``fig3_successes.png``) and Fig. 6 (``fig6_<mode>.png``) panels of ``model``,
    chosen by the criteria of Fig. 3 and Fig. 6 (:func:`image_scores`); returns the chosen files
    and every image's scores.

    Args:
        out: existing folder for the PNG files.
        test_set: the :class:`~colorlab.images.ColorizationDataset` that was evaluated.
        predictions: ``(N, 2, H, W)`` ab of each method; the three models' are shown.
        per_image_auc: ``model``'s per-image AuC (``metrics.json``), for the successes.
        n: images per panel (three at most for a failure mode).

    >>> import tempfile
    >>> from colorlab.data import SampleImages
    >>> test = SampleImages(size=16, n=12).splits()["train"]
    >>> pred = {m: torch.zeros(len(test), 2, 16, 16) for m in RUNS.values()}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     chosen = save_figure_panels(out, test, pred, [0.5] * len(test), n=1)["chosen"]
    ...     sorted(p.name for p in Path(out).iterdir())[:2]
    ['fig3_successes.png', 'fig6_colour_bias.png']
    """
    L, true_ab = to_lab(test_set.images)
    scores = image_scores(L, true_ab, predictions[model])
    colourful = scores["chroma"] > scores["chroma"].median()
    chosen = {"successes": select(torch.tensor(per_image_auc), n, among=colourful)}
    used = set(chosen["successes"])
    for mode in FAILURE_MODES:
        chosen[mode] = select(scores[mode], min(n, 3), exclude=used)
        used |= set(chosen[mode])
    for key, idx in chosen.items():
        columns = {"Ground truth": true_ab[idx], **{m: predictions[m][idx] for m in RUNS.values()}}
        titles = [test_set.files[i].rsplit("/", 1)[-1] for i in idx]
        name = "fig3_successes.png" if key == "successes" else f"fig6_{key}.png"
        _save_panel(Path(out) / name, L[idx], columns, titles)
    return {"model": model, "chosen": {k: [test_set.files[i] for i in v] for k, v in chosen.items()},
            "scores": {k: v.tolist() for k, v in scores.items()}}
