"""Every image below a folder, decoded once to a :class:`~colorlab.images.ColorizationDataset` and
cached (the real data sets of :mod:`colorlab.data` are image folders).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ._validation import check_path, check_positive_int
from .checkpoint import atomic_save
from .images import IMAGE_SUFFIXES, ColorizationDataset, UnreadableImage, fit_square, read_rgb
from .settings import cache_root

__all__ = ["ImageFolder"]


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
    cache = cache_root()
    if cache is None:
        return None
    # v2: images are turned upright by their EXIF orientation (earlier caches were not)
    h = hashlib.sha256(f"v2|{kind}|{size}|{fit}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return cache / f"{kind}-{size}-{fit}-{h.hexdigest()[:16]}.pt"


class ImageFolder(ColorizationDataset):
    """All images below ``root`` (recursive), decoded once to ``(N, 3, size, size)`` uint8.

    Args:
        root: the folder.
        size: square side in pixels.
        class_subfolders: label = index of the first-level subfolder (sorted names).
        fit: ``"crop"`` (central square, default) or ``"squash"`` (see
            :func:`fit_square`).
        strict: raise on the first unreadable file instead of skipping it (skips are counted,
            listed in ``skipped`` and reported by one warning). Unreadable files include
            truncated or non-image files and decompression bombs; with ``class_subfolders``, a
            file directly in ``root`` (no class) is skipped too.
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
        check_path(root, "root")
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"image folder {root} is a file; pass the folder that holds "
                                     f"the images")
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        if limit is not None:
            limit = check_positive_int(limit, "limit")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and p.is_file())
        outside: list[str] = []
        if class_subfolders:  # a stray file beside the class folders has no class: skipped
            outside = [f"{p}: not in a class folder ({root}/<class>/<image>)" for p in paths
                       if len(p.relative_to(root).parts) == 1]
            paths = [p for p in paths if len(p.relative_to(root).parts) > 1]
        if limit is not None:
            paths = paths[:limit]
        if not paths:
            where = " in class subfolders" if class_subfolders else ""
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under "
                                    f"{root}{where}")
        classes = sorted({p.relative_to(root).parts[0] for p in paths}) if class_subfolders else []

        def labels(files: list[str]) -> torch.Tensor:  # from the names: one cache serves both
            return torch.tensor([classes.index(f.split("/")[0]) if classes else -1
                                 for f in files], dtype=torch.long)

        cache_path = _cache_file(type(self).__name__, root, paths, size, fit) if cache else None
        if cache_path is not None and cache_path.exists():
            try:
                saved = torch.load(cache_path, weights_only=True)
                images, files, skipped = saved["images"], list(saved["files"]), saved["skipped"]
            except Exception:  # a stale or damaged cache is rebuilt, never trusted
                saved = None
            if saved is not None:
                if strict and skipped:  # what decoding would have raised
                    raise UnreadableImage(skipped[0])
                super().__init__(images, labels(files), files, classes, name or root.name, size,
                                 outside + skipped, "real", fit)
                self._report()
                return
        kept, images, skipped = _decode_all(paths, size, fit, strict)
        if not images:
            raise FileNotFoundError(f"none of the {len(paths)} files under {root} could be read")
        files = [paths[i].relative_to(root).as_posix() for i in kept]
        super().__init__(torch.stack(images), labels(files), files, classes, name or root.name,
                         size, outside + skipped, "real", fit)
        if cache_path is not None:
            try:
                atomic_save({"images": self.images, "files": self.files, "skipped": skipped},
                            cache_path)
            except OSError:
                pass  # a read-only home is fine: the cache is only a speed-up
        self._report()

    def _report(self) -> None:
        if self.skipped:
            warnings.warn(f"{self.name}: skipped {len(self.skipped)} unreadable file(s), e.g. "
                          f"{self.skipped[0]}", stacklevel=3)
