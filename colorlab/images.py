"""Reading image files robustly into fixed-size uint8 RGB tensors.

Any mode Pillow opens becomes 8-bit RGB: palette (``P``, with or without transparency), ``RGBA``
and ``LA`` (composited on white), grayscale ``L``/``1``, ``CMYK``, ``YCbCr`` and 16-bit/32-bit
integer or float grayscale (``I;16``, ``I``, ``F``, rescaled from their own range). A truncated
or non-image file, or a decompression bomb, raises :class:`UnreadableImage` with the reason; callers
decide whether to skip it (datasets count and report skips) or to stop. EXIF orientation is applied.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import check_path

__all__ = ["UnreadableImage", "read_rgb", "fit_square", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class UnreadableImage(ValueError):
    """A file that is not a readable image (truncated, corrupt, or not an image at all)."""


def _to_rgb_array(img) -> np.ndarray:
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        gray = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.array(img.convert("RGB"), dtype=np.uint8)


def read_rgb(path: str | Path) -> torch.Tensor:
    """Read an image file as a uint8 tensor ``(3, H, W)``; raises :class:`UnreadableImage`.

    The image is turned upright by its EXIF orientation (as image viewers show it), and a file
    that Pillow refuses as a decompression bomb (more than twice ``PIL.Image.MAX_IMAGE_PIXELS``,
    about 179 megapixels) is unreadable, like a truncated or non-image file.

    >>> import tempfile, PIL.Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     PIL.Image.new("P", (5, 4)).save(d + "/p.png")
    ...     read_rgb(d + "/p.png").shape
    torch.Size([3, 4, 5])
    """
    from PIL import Image, ImageOps

    check_path(path)
    path = Path(path)
    if path.is_dir():
        raise UnreadableImage(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise UnreadableImage(f"{path} does not exist")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            arr = _to_rgb_array(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError as err:
        raise UnreadableImage(f"{path}: refused, too many pixels for an image to decode safely "
                              f"({err})") from err
    except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many types on bad files
        raise UnreadableImage(f"{path}: not a readable image ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]})") from err
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def fit_square(img: torch.Tensor, size: int, fit: str = "crop") -> torch.Tensor:
    """Resize a uint8 image ``(3, H, W)`` to ``(3, size, size)`` (antialiased bilinear).

    ``fit="crop"`` takes the central square first (keeps proportions); ``fit="squash"`` resizes
    the whole image, changing its aspect ratio (the report resized 178x218 faces to 176x176).

    >>> fit_square(torch.zeros(3, 30, 20, dtype=torch.uint8), 8).shape
    torch.Size([3, 8, 8])
    """
    if fit not in ("crop", "squash"):
        raise ValueError(f"fit must be 'crop' or 'squash', got {fit!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 2 ** 15:
        raise ValueError(f"size must be an integer in [1, 32768], got {size!r}")
    if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.ndim != 3 \
            or img.shape[0] != 3 or img.numel() == 0:
        got = f"{img.dtype} {tuple(img.shape)}" if isinstance(img, torch.Tensor) else type(img).__name__
        raise ValueError(f"img must be a uint8 image (3, H, W) with H, W >= 1, got {got}")
    _, h, w = img.shape
    if fit == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[:, top:top + side, left:left + side]
    if img.shape[1:] == (size, size):
        return img.contiguous()
    out = F.interpolate(img[None].float(), size=(size, size), mode="bilinear",
                        align_corners=False, antialias=True)
    return out[0].round().clamp(0, 255).to(torch.uint8)
