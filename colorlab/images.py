"""Image files and the decoded data set: from a file on disk to a ``(N, 3, S, S)`` uint8 set (the
building blocks of :mod:`colorlab.data`; a whole folder is :mod:`colorlab.image_folder`).

* :func:`read_rgb` reads any file Pillow opens as 8-bit RGB: palette (``P``, with or without
  transparency), ``RGBA`` and ``LA`` (composited on white), grayscale ``L``/``1``, ``CMYK``,
  ``YCbCr`` and 16-bit/32-bit integer or float grayscale (``I;16``, ``I``, ``F``, rescaled from
  their own range), turned upright by its EXIF orientation. A truncated or non-image file, or a
  decompression bomb, raises :class:`UnreadableImage` with the reason; callers decide whether to
  skip it (datasets count and report skips) or to stop.
* :func:`fit_square` crops or squashes an image to a square of the dataset's size.
* :class:`ColorizationDataset` holds ``images`` ``(N, 3, S, S)`` uint8, ``labels`` ``(N,)``
  int64 (-1: no class), ``files`` (names relative to the dataset root), ``classes`` and
  ``skipped`` (unreadable files with the reason). Indexing returns ``(image, label)`` as
  torchvision datasets do.
* :func:`split_names` splits file names into train/val/test, the same on every machine.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import check_path

__all__ = ["UnreadableImage", "read_rgb", "fit_square", "IMAGE_SUFFIXES", "ColorizationDataset",
           "split_names"]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class UnreadableImage(ValueError):
    """A file that is not a readable image (truncated, corrupt, or not an image at all)."""


def _to_rgb_array(img) -> np.ndarray:
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():  # a float image with NaN or inf pixels has no gray level
            raise ValueError("it holds NaN or infinite pixel values")
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


class ColorizationDataset(torch.utils.data.Dataset):
    """Decoded images ``(N, 3, S, S)`` uint8 with labels, file names and a skip report."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, files: list[str],
                 classes: list[str], name: str, size: int, skipped: list[str] | None = None,
                 source: str = "real", fit: str = "crop") -> None:
        for arg, value in (("images", images), ("labels", labels)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{arg} must be a torch.Tensor, got {type(value).__name__}")
        if not isinstance(files, (list, tuple)):
            raise TypeError(f"files must be a list of file names, got {type(files).__name__}")
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (N, 3, S, S), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if not (len(images) == len(labels) == len(files)):
            raise ValueError("images, labels and files must have the same length")
        self.images, self.labels, self.files = images, labels, list(files)
        self.classes, self.name, self.size = list(classes), name, size
        self.skipped, self.source, self.fit = list(skipped or []), source, fit

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def subset(self, names: list[str], tag: str = "") -> ColorizationDataset:
        """The images whose file names are ``names``, in that order."""
        pos = {f: i for i, f in enumerate(self.files)}
        missing = [n for n in names if n not in pos]
        if missing:
            raise ValueError(f"{len(missing)} file names are not in dataset {self.name!r}, "
                             f"e.g. {missing[0]!r}")
        index = torch.tensor([pos[n] for n in names], dtype=torch.long)
        return ColorizationDataset(self.images[index], self.labels[index], list(names),
                                   self.classes, f"{self.name}{tag}", self.size, [], self.source,
                                   self.fit)

    def splits(self, seed: int = 0, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
               ) -> dict[str, ColorizationDataset]:
        """Deterministic train/val/test split by file name (see :func:`split_names`)."""
        return {k: self.subset(v, f"/{k}") for k, v in split_names(self.files, seed,
                                                                       fractions).items()}

    def manifest(self, seed: int = 0) -> dict:
        """What was read and how it was split, for provenance (plus its sha256 ``hash``)."""
        body = {"dataset": self.name, "source": self.source, "size": self.size, "fit": self.fit,
                "read": len(self), "skipped": len(self.skipped), "classes": self.classes,
                "split_seed": seed, "splits": split_names(self.files, seed)}
        body["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return body

    def summary(self) -> str:
        """One line: what was read, skipped and from where."""
        skipped = f", skipped {len(self.skipped)} unreadable" if self.skipped else ""
        kind = "" if self.source == "real" else " (embedded sample images, not the real dataset)"
        return (f"{self.name}: read {len(self)} images at {self.size}x{self.size}{skipped}"
                f", {len(self.classes) or 'no'} classes{kind}")


def split_names(names: list[str], seed: int = 0,
                fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> dict[str, list[str]]:
    """Split file names into train/val/test, the same on every machine and in every run.

    Names are ordered by ``sha256(f"{seed}/{name}")`` (independent of file-system order and of
    which other files exist), then cut at ``round(0.6 n)`` and ``round(0.8 n)``.

    >>> s = split_names([f"{i:06d}.jpg" for i in range(10)])
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [6, 2, 2]
    """
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(f"names must be a list of file names, got {type(names).__name__}")
    try:
        ok = len(fractions) == 3 and all(0 <= float(f) <= 1 for f in fractions) \
            and abs(sum(fractions) - 1) <= 1e-9
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, "
                         f"got {fractions!r}")
    ordered = sorted(names, key=lambda n: hashlib.sha256(f"{seed}/{n}".encode()).hexdigest())
    n = len(ordered)
    a, b = round(fractions[0] * n), round((fractions[0] + fractions[1]) * n)
    return {"train": sorted(ordered[:a]), "val": sorted(ordered[a:b]), "test": sorted(ordered[b:])}


def __getattr__(name: str):
    """``colorlab.images.ImageFolder`` still works: it lives in :mod:`colorlab.image_folder` now
    (imported on first use: that module imports this one)."""
    if name == "ImageFolder":
        from .image_folder import ImageFolder

        return ImageFolder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
