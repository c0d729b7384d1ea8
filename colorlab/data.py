"""Datasets for colorization: decoded once into a uint8 tensor, split deterministically by name.

* :class:`ImageFolder`: every image below a folder (recursive); optionally class = subfolder.
* :class:`CelebA`: the report's 7,200 aligned CelebA faces (local folder, or torchvision's
  downloader for readers with internet).
* :class:`Fruits10`: the 10-class fruit photos.
* :class:`SampleImages`: seeded random crops of images that ship inside installed wheels
  (scikit-image, scikit-learn, matplotlib): works on any fresh machine, offline. It is what CI
  uses and what :func:`load_images` falls back to, visibly, when no real data is found.

A dataset holds ``images`` ``(N, 3, S, S)`` uint8, ``labels`` ``(N,)`` int64 (-1: no class),
``files`` (names relative to the dataset root), ``classes`` and ``skipped`` (unreadable files with
the reason). Indexing returns ``(image, label)`` as torchvision datasets do. Augmentation, Lab
conversion and encoding happen later, in batch, on the training device (:mod:`colorlab.transforms`).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ._validation import check_positive_int
from .image_folder import ImageFolder
from .images import ColorizationDataset, fit_square, split_names
from .report import DATASETS
from .settings import data_root, profile as current_profile

__all__ = ["ColorizationDataset", "ImageFolder", "CelebA", "Fruits10", "SampleImages",
           "load_images", "images_for_profile", "sample_stand_in", "split_names", "LOADABLE",
           "CELEBA_SUBSET"]

#: what :func:`load_images` reads: the report's data sets and the embedded sample images
LOADABLE = ("sample", *DATASETS)
CELEBA_SUBSET = 7200  #: the report's CelebA subset: 000001.jpg ... 007200.jpg


def _celeba_folder(root: Path) -> Path | None:
    for candidate in (root / "celeba-7k", root / "img_align_celeba",
                      root / "celeba" / "img_align_celeba"):
        if candidate.is_dir():
            return candidate
    return None


class CelebA(ImageFolder):
    """The report's CelebA subset: the first 7,200 aligned faces (``000001.jpg``-``007200.jpg``).

    Looks in ``root`` (default ``$COLORLAB_DATA``) for ``celeba-7k/``, ``img_align_celeba/`` or
    ``celeba/img_align_celeba/``. With ``download=True`` and none of those, it calls
    ``torchvision.datasets.CelebA(root, download=True)``, which needs internet and often fails on
    Google Drive quotas; the error then says which files to place where.
    """

    def __init__(self, root: str | Path | None = None, size: int = 88, download: bool = False,
                 subset: int | None = CELEBA_SUBSET, fit: str = "crop", **kwargs) -> None:
        root = Path(root) if root is not None else data_root()
        folder = _celeba_folder(root)
        if folder is None and download:
            folder = self._download(root)
        if folder is None:
            raise FileNotFoundError(
                f"CelebA not found under {root}: put the aligned JPEGs (img_align_celeba/"
                f"000001.jpg ...) in {root / 'img_align_celeba'}, or run `colorlab data download "
                f"celeba --root {root}`, or set COLORLAB_DATA")
        super().__init__(folder, size, fit=fit, limit=subset, name="celeba", **kwargs)

    @staticmethod
    def _download(root: Path) -> Path:
        from torchvision.datasets import CelebA as TorchvisionCelebA

        try:
            TorchvisionCelebA(str(root), split="all", target_type=[], download=True)
        except Exception as err:  # network, quota and checksum errors have many types
            raise RuntimeError(
                f"downloading CelebA failed ({type(err).__name__}: {err}). Google Drive often "
                f"refuses it (daily quota). Download img_align_celeba.zip by hand from the CelebA "
                f"page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html, 'Align&Cropped Images') and "
                f"unzip it so that {root / 'celeba' / 'img_align_celeba' / '000001.jpg'} "
                f"exists") from err
        return root / "celeba" / "img_align_celeba"


class Fruits10(ImageFolder):
    """The 10-class fruit photos: ``root/fruits-10/<class>/*`` (default root ``$COLORLAB_DATA``).

    The collection is Kaggle's "fruit-classification10-class", also public on GitHub:
    ``colorlab data download fruits`` (:mod:`colorlab.download`) rebuilds the book's copy.
    """

    def __init__(self, root: str | Path | None = None, size: int = 88, fit: str = "crop",
                 **kwargs) -> None:
        root = Path(root) if root is not None else data_root()
        folder = root / "fruits-10"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"fruits-10 not found under {root}: run `colorlab data download fruits --root "
                f"{root}`, or set COLORLAB_DATA")
        super().__init__(folder, size, class_subfolders=True, fit=fit, name="fruits", **kwargs)


def _wheel_images() -> dict[str, torch.Tensor]:
    """The colour photos that ship inside installed wheels, as uint8 ``(3, H, W)``."""
    import numpy as np
    from skimage import data

    out = {}
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                 "colorwheel"):
        out[name] = torch.from_numpy(np.ascontiguousarray(getattr(data, name)()[..., :3]))
    try:
        from sklearn.datasets import load_sample_images

        for fname, img in zip(("china", "flower"), load_sample_images().images):
            out[fname] = torch.from_numpy(np.array(img))
    except ImportError:
        pass
    try:
        import matplotlib.cbook as cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = torch.from_numpy(np.asarray(Image.open(fh).convert("RGB")).copy())
    except (ImportError, OSError):
        pass
    return {k: v.permute(2, 0, 1).contiguous() for k, v in sorted(out.items())}


class SampleImages(ColorizationDataset):
    """Seeded random square crops of the wheel images: the embedded default dataset.

    Each crop takes a random square of 30-90 % of the shorter side at a random place of a random
    source image, resized to ``size``. Labels are the source images (``classes``).

    >>> ds = SampleImages(size=32, n=12, seed=0)
    >>> ds.images.shape, ds.images.dtype, len(ds.classes) >= 6
    (torch.Size([12, 3, 32, 32]), torch.uint8, True)
    """

    def __init__(self, size: int = 88, n: int = 240, seed: int = 0) -> None:
        check_positive_int(size, "size")
        check_positive_int(n, "n")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 62:
            raise ValueError(f"seed must be an integer in [0, 2**62), got {seed!r}")
        sources = _wheel_images()
        names = list(sources)
        gen = torch.Generator().manual_seed(seed)
        images, labels, files = [], [], []
        for i in range(n):
            label = int(torch.randint(len(names), (1,), generator=gen))
            img = sources[names[label]]
            _, h, w = img.shape
            side = int(min(h, w) * (0.3 + 0.6 * float(torch.rand(1, generator=gen))))
            top = int(torch.randint(h - side + 1, (1,), generator=gen))
            left = int(torch.randint(w - side + 1, (1,), generator=gen))
            images.append(fit_square(img[:, top:top + side, left:left + side], size))
            labels.append(label)
            files.append(f"{names[label]}/{i:05d}.png")
        super().__init__(torch.stack(images), torch.tensor(labels), files, names, "sample", size,
                         [], "sample")


def sample_stand_in(name: str, size: int, n: int) -> ColorizationDataset:
    """Sample images standing in for dataset ``name`` when the real one is absent or too slow
    (the ``ci`` profile). Each dataset gets its own draw; the CelebA stand-in has no classes, as
    CelebA has none (it is scored by agreement), the Fruits one keeps the sample classes.

    >>> ds = sample_stand_in("celeba", 16, 4)
    >>> ds.name, ds.classes, ds.labels.tolist()
    ('celeba (sample stand-in)', [], [-1, -1, -1, -1])
    """
    ds = SampleImages(size=size, n=n, seed=1 if name == "celeba" else 2)
    if name == "celeba":
        ds.classes, ds.labels = [], torch.full_like(ds.labels, -1)
    ds.name = f"{name} (sample stand-in)"
    return ds


def load_images(name: str, size: int = 88, root: str | Path | None = None, fallback: bool = True,
                sample_count: int = 240, **kwargs) -> ColorizationDataset:
    """Load dataset ``name`` (``"celeba"``, ``"fruits"`` or ``"sample"``).

    With ``fallback=True`` a missing real dataset is replaced by :class:`SampleImages`, with a
    warning that says so (the returned dataset's ``source`` is ``"sample"``).

    >>> load_images("sample", size=16, sample_count=4).summary()
    'sample: read 4 images at 16x16, 9 classes (embedded sample images, not the real dataset)'
    """
    if name not in LOADABLE:
        raise ValueError(f"dataset must be one of {LOADABLE}, got {name!r}")
    check_positive_int(sample_count, "sample_count")
    if name == "sample":
        return SampleImages(size=size, n=sample_count)
    try:
        return CelebA(root, size, **kwargs) if name == "celeba" else Fruits10(root, size, **kwargs)
    except FileNotFoundError as err:
        if not fallback:
            raise
        warnings.warn(f"{err}. Using the embedded sample images instead: numbers will not be "
                      f"the report's.", stacklevel=2)
        return sample_stand_in(name, size, sample_count)


def images_for_profile(name: str, size: int = 88, profile: str | None = None,
                       ci_count: int = 48, ci_size: int = 32) -> ColorizationDataset:
    """The images a chapter computes on: in the ``ci`` profile a few sample images
    (``ci_count`` at ``ci_size``); otherwise the real dataset when ``$COLORLAB_DATA`` has it, else
    the sample images with a warning. Print ``.summary()`` to show readers which it was.

    >>> images_for_profile("fruits", profile="ci", ci_count=4).name
    'fruits (sample stand-in)'
    """
    if (profile or current_profile()) == "ci":
        return sample_stand_in(name, ci_size, ci_count)
    return load_images(name, size, fallback=True)
