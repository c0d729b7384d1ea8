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
conversion and encoding happen later, in batch, on the training device (:mod:`colorlab.batches`).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .images import IMAGE_SUFFIXES, UnreadableImage, fit_square, read_rgb
from .paths import data_root

__all__ = ["ColorizationDataset", "ImageFolder", "CelebA", "Fruits10", "SampleImages",
           "load_images", "images_for_profile", "split_names", "DATASETS", "CELEBA_SUBSET"]

DATASETS = ("sample", "celeba", "fruits")
CELEBA_SUBSET = 7200  #: the report's CelebA subset: 000001.jpg ... 007200.jpg


class ColorizationDataset(torch.utils.data.Dataset):
    """Decoded images ``(N, 3, S, S)`` uint8 with labels, file names and a skip report."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, files: list[str],
                 classes: list[str], name: str, size: int, skipped: list[str] | None = None,
                 source: str = "real", fit: str = "crop") -> None:
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
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, "
                         f"got {fractions!r}")
    ordered = sorted(names, key=lambda n: hashlib.sha256(f"{seed}/{n}".encode()).hexdigest())
    n = len(ordered)
    a, b = round(fractions[0] * n), round((fractions[0] + fractions[1]) * n)
    return {"train": sorted(ordered[:a]), "val": sorted(ordered[a:b]), "test": sorted(ordered[b:])}


def _decode_all(paths: list[Path], size: int, fit: str, strict: bool
                ) -> tuple[list[int], list[torch.Tensor], list[str]]:
    def work(path: Path):
        try:
            return fit_square(read_rgb(path), size, fit), None
        except UnreadableImage as err:
            if strict:
                raise
            return None, str(err)

    kept, images, skipped = [], [], []
    # Pillow's palette-transparency and EXIF warnings say nothing useful here; the filter is set
    # once in this thread (warnings.catch_warnings is not thread-safe inside the workers)
    with warnings.catch_warnings(), ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        warnings.filterwarnings("ignore", module="PIL")
        for i, (img, err) in enumerate(pool.map(work, paths)):
            if img is None:
                skipped.append(err)
            else:
                kept.append(i)
                images.append(img)
    return kept, images, skipped


def _cache_file(kind: str, root: Path, paths: list[Path], size: int, fit: str) -> Path | None:
    cache = os.environ.get("COLORLAB_CACHE", str(Path.home() / ".cache" / "colorlab"))
    if cache.lower() in ("", "0", "off", "none"):
        return None
    h = hashlib.sha256(f"{kind}|{size}|{fit}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return Path(cache).expanduser() / f"{kind}-{size}-{fit}-{h.hexdigest()[:16]}.pt"


class ImageFolder(ColorizationDataset):
    """All images below ``root`` (recursive), decoded once to ``(N, 3, size, size)`` uint8.

    Args:
        root: the folder.
        size: square side in pixels.
        class_subfolders: label = index of the first-level subfolder (sorted names).
        fit: ``"crop"`` (central square, default) or ``"squash"`` (see
            :func:`colorlab.images.fit_square`).
        strict: raise on the first unreadable file instead of skipping it (skips are counted,
            listed in ``skipped`` and reported by one warning).
        limit: keep only the first ``limit`` files in sorted order.
        cache: keep the decoded tensor in ``$COLORLAB_CACHE`` (default ``~/.cache/colorlab``;
            ``COLORLAB_CACHE=off`` disables it); the cache key covers names, sizes and mtimes.

    >>> import tempfile, PIL.Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     PIL.Image.new("RGB", (30, 20), "red").save(d + "/red.png")
    ...     ds = ImageFolder(d, size=8, cache=False)
    >>> ds.images.shape, ds.files
    (torch.Size([1, 3, 8, 8]), ['red.png'])
    """

    def __init__(self, root: str | Path, size: int = 88, class_subfolders: bool = False,
                 fit: str = "crop", strict: bool = False, limit: int | None = None,
                 name: str | None = None, cache: bool = True) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and p.is_file())
        if limit is not None:
            paths = paths[:limit]
        if not paths:
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
        classes = sorted({p.relative_to(root).parts[0] for p in paths
                          if len(p.relative_to(root).parts) > 1}) if class_subfolders else []
        cache_path = _cache_file(type(self).__name__, root, paths, size, fit) if cache else None
        if cache_path is not None and cache_path.exists():
            try:
                saved = torch.load(cache_path, weights_only=True)
                super().__init__(saved["images"], saved["labels"], saved["files"], classes,
                                 name or root.name, size, saved["skipped"], "real", fit)
                self._report()
                return
            except Exception:  # a stale or damaged cache is rebuilt, never trusted
                pass
        kept, images, skipped = _decode_all(paths, size, fit, strict)
        if not images:
            raise FileNotFoundError(f"none of the {len(paths)} files under {root} could be read")
        files = [paths[i].relative_to(root).as_posix() for i in kept]
        labels = torch.tensor([classes.index(f.split("/")[0]) if classes else -1 for f in files],
                              dtype=torch.long)
        super().__init__(torch.stack(images), labels, files, classes, name or root.name, size,
                         skipped, "real", fit)
        if cache_path is not None:
            from .checkpoint import atomic_save

            try:
                atomic_save({"images": self.images, "labels": self.labels, "files": self.files,
                             "skipped": self.skipped}, cache_path)
            except OSError:
                pass  # a read-only home is fine: the cache is only a speed-up
        self._report()

    def _report(self) -> None:
        if self.skipped:
            warnings.warn(f"{self.name}: skipped {len(self.skipped)} unreadable file(s), e.g. "
                          f"{self.skipped[0]}", stacklevel=3)


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
                f"000001.jpg ...) in {root / 'img_align_celeba'}, or set COLORLAB_DATA, or pass "
                f"download=True")
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

    The collection is Kaggle's "fruit-classification10-class" (an account is needed, so there is
    no automatic download): unzip it so that each class is a subfolder of ``fruits-10/``.
    """

    def __init__(self, root: str | Path | None = None, size: int = 88, fit: str = "crop",
                 **kwargs) -> None:
        root = Path(root) if root is not None else data_root()
        folder = root / "fruits-10"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"fruits-10 not found under {root}: unzip Kaggle's 'fruit-classification10-class' "
                f"so that {folder}/<class>/<image> exists, or set COLORLAB_DATA")
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


def load_images(name: str, size: int = 88, root: str | Path | None = None, fallback: bool = True,
                sample_count: int = 240, **kwargs) -> ColorizationDataset:
    """Load dataset ``name`` (``"celeba"``, ``"fruits"`` or ``"sample"``).

    With ``fallback=True`` a missing real dataset is replaced by :class:`SampleImages`, with a
    warning that says so (the returned dataset's ``source`` is ``"sample"``).

    >>> load_images("sample", size=16, sample_count=4).summary()
    'sample: read 4 images at 16x16, 9 classes (embedded sample images, not the real dataset)'
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if name == "sample":
        return SampleImages(size=size, n=sample_count)
    try:
        return CelebA(root, size, **kwargs) if name == "celeba" else Fruits10(root, size, **kwargs)
    except FileNotFoundError as err:
        if not fallback:
            raise
        warnings.warn(f"{err}. Using the embedded sample images instead: numbers will not be "
                      f"the report's.", stacklevel=2)
        sample = SampleImages(size=size, n=sample_count)
        sample.name = f"{name} (sample stand-in)"
        return sample


def images_for_profile(name: str, size: int = 88, profile: str | None = None,
                       ci_count: int = 48, ci_size: int = 32) -> ColorizationDataset:
    """The images a chapter computes on: in the ``ci`` profile a few sample images
    (``ci_count`` at ``ci_size``); otherwise the real dataset when ``$COLORLAB_DATA`` has it, else
    the sample images with a warning. Print ``.summary()`` to show readers which it was.

    >>> images_for_profile("fruits", profile="ci", ci_count=4).name
    'fruits (sample stand-in)'
    """
    from .paths import profile as current_profile

    if (profile or current_profile()) == "ci":
        ds = SampleImages(size=ci_size, n=ci_count, seed=0 if name == "celeba" else 1)
        ds.name = f"{name} (sample stand-in)"
        return ds
    return load_images(name, size, fallback=True)
