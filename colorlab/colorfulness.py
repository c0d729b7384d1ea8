"""How colourful a colorization is: mean chroma, Hasler-Süsstrunk colourfulness and the
saturation histogram (derived in ``book/08_evaluation.ipynb``).

AuC rewards an ab close to the truth, and a grey guess is never far from it: it cannot tell a
vivid colorization from a washed-out one. Zhang et al. introduced class rebalancing precisely to
make colours more vivid, so its effect is measured here directly:

* mean chroma ``C = 1/HW sum_{h,w} sqrt(a_hw^2 + b_hw^2)`` (Lab units; 0 for a grey image);
* Hasler & Süsstrunk's colourfulness (2003), on sRGB in [0, 255]:
  ``rg = R - G``, ``yb = (R + G)/2 - B``,
  ``M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``
  (their study found M to agree with people's ratings of colourfulness, r = 0.95);
* the histogram of HSV saturation ``S = (max - min) / max`` over all pixels (``S = 0`` where
  ``max = 0``).
"""
from __future__ import annotations

import torch

from ._validation import check_finite, check_float, check_nonempty, check_shape, check_tensor

__all__ = ["mean_chroma", "hasler_susstrunk", "hsv_saturation", "saturation_histogram"]


def _check(x: torch.Tensor, name: str, channels: int, layout: str) -> None:
    check_tensor(x, name)
    check_float(x, name)
    check_shape(x, name, ndim=4, channels=channels, channel_dim=1, layout=layout)
    check_nonempty(x, name)
    check_finite(x, name)


def mean_chroma(ab: torch.Tensor) -> torch.Tensor:
    """Per-image mean chroma ``(B, 2, H, W) -> (B,)`` float64, in Lab units.

    >>> ab = torch.zeros(2, 2, 1, 2); ab[1, 0] = 3.0; ab[1, 1] = 4.0
    >>> mean_chroma(ab).tolist()
    [0.0, 5.0]
    """
    _check(ab, "ab", 2, "(B, 2, H, W)")
    return torch.linalg.vector_norm(ab.double(), dim=1).flatten(1).mean(dim=1)


def hasler_susstrunk(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image colourfulness of Hasler & Süsstrunk, ``(B, 3, H, W)`` sRGB in [0, 1] -> ``(B,)``
    float64 (on their 0-255 scale: about 0 for grey, 15 "slightly", 33 "moderately", 59 "quite",
    82 "highly", 109 "extremely colourful").

    >>> gray = torch.full((1, 3, 4, 4), 0.5)
    >>> hasler_susstrunk(gray).tolist()
    [0.0]
    >>> red = torch.zeros(1, 3, 4, 4); red[:, 0] = 1.0
    >>> round(hasler_susstrunk(red).item(), 2)  # 0.3 * sqrt(255^2 + 127.5^2)
    85.53
    """
    _check(rgb, "rgb", 3, "(B, 3, H, W)")
    r, g, b = (255.0 * rgb.double()).unbind(dim=1)
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    return spread + 0.3 * torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)


def hsv_saturation(rgb: torch.Tensor) -> torch.Tensor:
    """HSV saturation per pixel, ``(B, 3, H, W)`` sRGB in [0, 1] -> ``(B, H, W)`` in [0, 1].

    >>> hsv_saturation(torch.tensor([0.5, 0.25, 0.0]).view(1, 3, 1, 1)).item()
    1.0
    """
    _check(rgb, "rgb", 3, "(B, 3, H, W)")
    hi, lo = rgb.amax(dim=1), rgb.amin(dim=1)
    return torch.where(hi > 0, (hi - lo) / hi.clamp_min(torch.finfo(rgb.dtype).tiny), 0.0)


def saturation_histogram(rgb: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Share of all pixels of ``rgb`` ``(B, 3, H, W)`` in each of ``bins`` equal saturation
    intervals ``[e_i, e_i+1)`` of [0, 1], ``e_i = i / bins`` (the last one closed, as
    ``numpy.histogram``): ``(bins,)`` float64 summing to 1.

    >>> saturation_histogram(torch.full((1, 3, 2, 2), 0.5), bins=4).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    s = hsv_saturation(rgb).double().flatten()
    edges = torch.arange(bins + 1, dtype=torch.float64, device=s.device) / bins
    index = (torch.searchsorted(edges, s, right=True) - 1).clamp(0, bins - 1)
    return torch.bincount(index, minlength=bins).double() / s.numel()
