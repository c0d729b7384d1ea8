"""Measured criteria that pick the report's example figures (``book/09_successes_failures.ipynb``).

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

import torch
import torch.nn.functional as F

from .metrics import ab_error

__all__ = ["image_scores", "select", "FAILURE_MODES"]

FAILURE_MODES = ("colour_bias", "colour_deficiency", "inconsistent_colouring", "edge_pollution",
                 "colour_bleeding")


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W)``: central-difference gradient norm over all channels."""
    dx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0)) / 2
    dy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1)) / 2
    return (dx.square() + dy.square()).sum(dim=1).sqrt()


def image_scores(L: torch.Tensor, true_ab: torch.Tensor, pred_ab: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
    """Per-image scores ``(B,)`` for every criterion of this module (plus ``chroma`` of the truth).

    >>> L = torch.rand(2, 1, 16, 16) * 100; ab = torch.randn(2, 2, 16, 16) * 20
    >>> s = image_scores(L, ab, ab * 0.5)
    >>> bool((s["colour_deficiency"] > 0).all()), sorted(s)[:3]
    (True, ['chroma', 'colour_bias', 'colour_bleeding'])
    """
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
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    exclude = exclude or set()
    out = [i for i in order if (among is None or bool(among[i])) and i not in exclude]
    return out[:n]
