"""From a batch of uint8 images to network inputs and targets, on the training device.

The report's augmentation: random horizontal flips and, with probability 0.2, a resize to 110 %
followed by a centre crop back to size. Then sRGB -> Lab; the network sees L, the loss sees ab
at the output resolution (1/4), subsampled as Zhang et al. did (every 4th pixel).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import (check_images, check_positive, check_positive_int, check_shape,
                          check_tensor, check_unit_interval)
from .color import rgb_to_lab

__all__ = ["augment", "to_lab", "downsample_ab", "OUTPUT_STRIDE"]


OUTPUT_STRIDE = 4


def augment(images: torch.Tensor, generator: torch.Generator, flip_p: float = 0.5,
            zoom_p: float = 0.2, zoom: float = 1.1) -> torch.Tensor:
    """Random flips and zoom-crops of a uint8 batch ``(B, 3, S, S)``; returns float in [0, 1].

    ``generator`` lives on the CPU and drives every random choice, so a seeded run repeats
    exactly on any device.

    >>> g = torch.Generator().manual_seed(0)
    >>> augment(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), g).shape
    torch.Size([4, 3, 8, 8])
    """
    check_images(images)
    check_unit_interval(flip_p, "flip_p")
    check_unit_interval(zoom_p, "zoom_p")
    if not 1.0 <= check_positive(zoom, "zoom") <= 4.0:
        raise ValueError(f"zoom must be in [1, 4] (a resize factor before the centre crop), "
                         f"got {zoom!r}")
    x = images.float().div_(255.0)
    b, _, h, w = x.shape
    flip = _to_device((torch.rand(b, generator=generator) < flip_p), x.device)
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    zoomed = _to_device((torch.rand(b, generator=generator) < zoom_p).nonzero().squeeze(1),
                        x.device)
    if zoomed.numel():
        big_h, big_w = round(h * zoom), round(w * zoom)
        big = F.interpolate(x[zoomed], size=(big_h, big_w), mode="bilinear", align_corners=False)
        top, left = (big_h - h) // 2, (big_w - w) // 2
        x[zoomed] = big[..., top:top + h, left:left + w].clamp_(0, 1)
    return x


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small CPU tensor to ``device`` without waiting for the device's queue (pinned
    memory, non-blocking): a plain copy to a GPU would stall the training step."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def to_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(*, 3, H, W)`` sRGB in [0, 1] (or uint8) -> ``L (*, 1, H, W)``, ``ab (*, 2, H, W)``.

    >>> L, ab = to_lab(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8))
    >>> round(L.mean().item(), 3), L.shape, ab.shape
    (100.0, torch.Size([1, 1, 4, 4]), torch.Size([1, 2, 4, 4]))
    >>> [tuple(x.shape) for x in to_lab(torch.rand(3, 8, 8))]  # one image, no batch
    [(1, 8, 8), (2, 8, 8)]
    """
    check_tensor(rgb, "rgb")
    if rgb.dtype == torch.uint8:
        rgb = rgb.float() / 255.0
    lab = rgb_to_lab(rgb)  # checks the (*, 3, H, W) layout
    return lab[..., :1, :, :], lab[..., 1:, :, :]


def downsample_ab(ab: torch.Tensor, stride: int = OUTPUT_STRIDE) -> torch.Tensor:
    """ab at the network's output resolution: every ``stride``-th pixel, starting at the centre of
    the first ``stride x stride`` cell (Zhang et al. subsample the target rather than average it,
    which would desaturate colour edges).

    >>> downsample_ab(torch.arange(64.0).view(1, 1, 8, 8).repeat(1, 2, 1, 1)).shape
    torch.Size([1, 2, 2, 2])
    """
    check_tensor(ab, "ab")
    check_shape(ab, "ab", min_ndim=2, layout="(..., H, W)")
    stride = check_positive_int(stride, "stride", maximum=max(ab.shape[-2:]))
    off = stride // 2
    return ab[..., off::stride, off::stride]
