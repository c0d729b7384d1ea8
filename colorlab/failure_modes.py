"""Which test images the report's Fig. 3 (successes) and Fig. 6 (five failure modes) show, chosen by
measure rather than by hand, and their panels (``book/09_successes_failures.ipynb``).

Each figure shows the test images that score highest on a stated per-image measure
(:func:`image_scores`):

* ``success``: per-image AuC, among images whose true colour is more saturated than the median
  (a grey image is trivially "well" colorized).
* ``colour_bias``: ``||mean(ŷ_ab) - mean(y_ab)||``, a global colour cast (Lab units).
* ``colour_deficiency``: mean true chroma minus mean predicted chroma (desaturation, Lab units).
* ``inconsistent_colouring``: mean ab-gradient magnitude of the prediction inside regions where
  both L and the true ab are flat (colour changing where nothing changes).
* ``edge_pollution``: mean ab error on luminance edges (top 10 % of ``|∇L|``) over the mean error.
* ``colour_bleeding``: mean ab error in a 1-3 pixel band beside luminance edges over the mean
  error (colour leaking across a boundary).

The other figures drawn from a reproduction are in :mod:`colorlab.figures`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ._validation import check_finite, check_float, check_nonempty, check_shape, check_tensor
from .metrics import ab_error
from .plots import save_png, show_colorizations
from .report import RUNS
from .transforms import to_lab

__all__ = ["FAILURE_MODES", "image_scores", "select", "save_figure_panels"]

#: the failure modes of Fig. 6, in the report's order
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

    save_png(show_colorizations(L, columns, titles, size=1.6, figure=Figure()), path)


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
