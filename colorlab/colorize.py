"""Colorize image files of any size with a trained checkpoint (``colorlab colorize``).

The model sees the lightness resized to its training size; the predicted ab is upsampled back to
the original size and joined to the original, full-resolution L. Every input is read and checked
before anything is written, outputs never overwrite existing files (unless asked), and each file
is written atomically. The outputs of one call are replaced together
(:func:`colorlab.checkpoint.atomic_write_many`): if writing any of them fails, every file that was
there before, ``--overwrite`` or not, is left as it was. EXIF orientation is honoured, and images
too large to decode safely (decompression bombs) are refused.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F

from ._validation import check_images, check_positive, check_positive_int, check_tensor
from .checkpoint import atomic_write_many, check_output_file, make_folder
from .color import lab_to_rgb
from .config import autocast, resolve_precision
from .decode import DEFAULT_T
from .images import UnreadableImage, read_rgb
from .train import load_model
from .transforms import to_lab

__all__ = ["colorize_image", "colorize_files"]


@torch.no_grad()
def colorize_image(model, rgb: torch.Tensor, size: int, T: float = DEFAULT_T) -> torch.Tensor:
    """``rgb`` uint8 ``(3, H, W)`` -> colorized uint8 ``(3, H, W)`` (only its L is used).

    ``size``: the model's training size; the lightness is resized to it for the network and the
    predicted ab is upsampled back to ``(H, W)``.

    >>> from colorlab.models import ColorizationNet
    >>> colorize_image(ColorizationNet(width=0.0625), torch.zeros(3, 30, 50, dtype=torch.uint8), 16).shape
    torch.Size([3, 30, 50])
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a ColorizationNet, got {type(model).__name__}")
    check_tensor(rgb, "rgb")
    if rgb.ndim != 3:
        raise ValueError(f"rgb must be one image (3, H, W), got shape {tuple(rgb.shape)}")
    check_images(rgb[None], "rgb")
    size = check_positive_int(size, "size")
    check_positive(T, "T")
    device = next(model.parameters()).device
    L, _ = to_lab(rgb[None].to(device))
    small = F.interpolate(L, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    with autocast(device, resolve_precision("auto", device)):  # colorlab.config's rule
        ab_small = model.colorize(small, T=T).float()
    ab = F.interpolate(ab_small, size=L.shape[-2:], mode="bilinear", align_corners=False)
    out = lab_to_rgb(torch.cat([L, ab], dim=1))[0]
    return (out * 255).round().clamp(0, 255).to(torch.uint8).cpu()


def _png_bytes(img: torch.Tensor) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def colorize_files(images: list[str | Path], checkpoint: str | Path, out_dir: str | Path,
                   T: float | None = None, head: str | None = None, overwrite: bool = False,
                   device: str | torch.device = "cpu") -> list[Path]:
    """Colorize ``images`` into ``out_dir/<stem>_colorized.png``; returns the written paths."""
    model, config = load_model(checkpoint, device, expect_head=head)
    if T is not None and config.head != "classification":
        raise ValueError(f"--temperature applies to classification models; {checkpoint} is a "
                         f"{config.head} model")
    if T is not None:
        check_positive(T, "temperature")
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in images]
    if not inputs:
        raise ValueError("no images given")
    targets = [out_dir / f"{p.stem}_colorized.png" for p in inputs]
    if len(set(targets)) != len(targets):
        raise ValueError("two inputs share a file name stem; colorize them into different folders")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} is a file; choose a folder for the outputs")
    for p, t in zip(inputs, targets):
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a folder; pass image files (e.g. {p}/*.jpg)")
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist")
        check_output_file(t, overwrite)
    sources = {p.resolve(): p for p in inputs}
    for t in targets:  # an output never replaces an input, its own or another's
        if t.resolve() in sources:
            raise ValueError(f"output {t} would overwrite the input {sources[t.resolve()]}; "
                             f"choose another --out")
    decoded = []
    for p in inputs:
        try:
            decoded.append(read_rgb(p))
        except UnreadableImage as err:
            raise ValueError(str(err)) from err
    results = [_png_bytes(colorize_image(model, img, config.size, T if T is not None else DEFAULT_T))
               for img in decoded]
    make_folder(out_dir)
    atomic_write_many(dict(zip(targets, results)))
    return targets
