"""``colorlab data download celeba|fruits [--root DIR]``: the book's real data, checked.

* ``fruits``: the public GitHub repository ``kizokubanczyk/Fruit-classification`` at a fixed
  commit (:data:`FRUITS_URL`), folders ``data/{train,test}/<class>/``. Two class folders are
  renamed (``strawberries``, ``pinenapple``), every file is named by the first 12 hex digits of
  the sha256 of its bytes (bytes unchanged) and exact duplicates within a class are dropped:
  3,199 files in ``fruits-10/<class>/``, each checked against the manifest of names and sha256
  hashes that ships with colorlab (``colorlab/resources/fruits-10.sha256``; the names are those of
  the recorded run's ``results/fruits/manifest.json``).
* ``celeba``: torchvision's official downloader (``torchvision.datasets.CelebA``, from Google
  Drive through ``gdown``: ``pip install 'colorlab[data]'``; it checks the archive's md5), reduced
  to the book's subset ``000001.jpg``-``007200.jpg`` in ``celeba-7k/``, checked by name and count
  against the recorded run's manifest. (The official images' sha256 cannot be listed here: the
  book's machines hold a downscaled copy.) ``source=`` takes a mirror of ``img_align_celeba.zip``.

Downloads go to ``<root>/.downloads/`` as ``<name>.part``, resume where they stopped (HTTP Range
requests; ``file://`` sources too) and show a progress bar. A dataset is assembled in a hidden
folder and renamed into place only when every check passed: a failure leaves no half-written
dataset folder, and its one-line message says what to do.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse
from urllib.request import url2pathname

from .report import DATASETS
from .settings import data_root

__all__ = ["DownloadError", "FRUITS_URL", "fetch", "sha256_file", "fruits_manifest",
           "download_fruits", "download_celeba", "download_dataset", "add_data_command"]

FRUITS_COMMIT = "bcf5e13387f7d632432567544c8b1ca64cf07ed8"
FRUITS_URL = f"https://github.com/kizokubanczyk/Fruit-classification/archive/{FRUITS_COMMIT}.zip"
FRUITS_RENAME = {"strawberries": "strawberry", "pinenapple": "pineapple"}
CELEBA_COUNT = 7200


class DownloadError(RuntimeError):
    """A download or a check failed; the message says what to do."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float):
    """(stream, bytes still to come or None, whether the stream starts at ``offset``)."""
    if url.startswith("file://"):
        path = Path(url2pathname(urlparse(url).path))
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller
        fh.seek(min(offset, path.stat().st_size))
        return fh, path.stat().st_size - fh.tell(), True
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    length = resp.headers.get("Content-Length")
    return resp, int(length) if length else None, resp.status == 206


def fetch(url: str, dest: str | Path, sha256: str | None = None, progress: bool = True,
          timeout: float = 60) -> Path:
    """Download ``url`` (http(s) or ``file://``) to ``dest`` through ``dest.part``, resuming a
    ``.part`` left by an interrupted call; with ``sha256``, a mismatch deletes the download.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     src = pathlib.Path(tmp, "a.bin"); _ = src.write_bytes(b"colour")
    ...     fetch(src.as_uri(), pathlib.Path(tmp, "b.bin"), progress=False).read_bytes()
    b'colour'
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    retry = f"run the same command again: it resumes from the {offset:,} bytes already here"
    try:
        stream, remaining, resumed = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the .part is complete
            stream, remaining, resumed = None, 0, True
        else:
            raise DownloadError(f"could not download {url} (HTTP {err.code}); check the URL, "
                                f"or {retry}") from err
    except OSError as err:  # URLError, refused connections, DNS failures, missing files
        raise DownloadError(f"could not download {url} ({getattr(err, 'reason', err)}); check "
                            f"the connection, then {retry}") from err
    if not resumed:
        offset = 0  # the server ignored the Range request: start over
    total = offset + remaining if remaining is not None else None
    if stream is not None:
        with stream, open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name,
                     disable=not progress, leave=False) as bar:
            try:
                for block in iter(lambda: stream.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            except OSError as err:  # IncompleteRead, resets and timeouts
                raise DownloadError(f"the download of {url} was interrupted at "
                                    f"{out.tell():,} bytes ({err}); run the same command again: "
                                    f"it resumes there") from err
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(f"the download of {url} stopped at {size:,} of {total:,} bytes; run "
                            f"the same command again: it resumes there")
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise DownloadError(f"{url} has sha256 {got[:12]}..., expected {sha256[:12]}...: the "
                                f"file was deleted; run the command again, and if it persists the "
                                f"source has changed (report it)")
    os.replace(part, dest)
    return dest


def fruits_manifest() -> dict[str, str]:
    """``{"<class>/<name>": sha256}`` of the book's 3,199 fruit images.

    >>> m = fruits_manifest(); len(m), all(v.startswith(k.split("/")[1][:12]) for k, v in m.items())
    (3199, True)
    """
    text = resources.files("colorlab.resources").joinpath("fruits-10.sha256").read_text()
    return {name: digest for digest, name in (ln.split(maxsplit=1) for ln in text.splitlines()
                                              if ln.strip())}


@contextlib.contextmanager
def _discarded_if_bad(archive: Path) -> Iterator[None]:
    """Delete a downloaded ``archive`` that proves bad (not a zip archive, or not the files the
    book expects) before the error goes on, so that the next call downloads it again instead of
    reusing it."""
    try:
        yield
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)
        raise DownloadError(f"{archive} is not a valid zip archive ({err}); it was deleted: run "
                            f"the command again, and if it fails the same way, check the source "
                            f"(--source)") from err
    except DownloadError:
        archive.unlink(missing_ok=True)
        raise


def _stage(root: Path, name: str) -> Path:
    staging = root / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left by a call that was killed
    staging.mkdir(parents=True)
    return staging


def _compare(got: dict[str, str], expected: dict[str, str], what: str) -> None:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    if missing or extra or wrong:
        example = (missing or extra or wrong)[0]
        raise DownloadError(f"{what} do not match the book's manifest ({len(missing)} missing, "
                            f"{len(extra)} unexpected, {len(wrong)} with another sha256; e.g. "
                            f"{example}); nothing was written. The source has changed: report it")


def _done(staging: Path, final: Path) -> Path:
    os.replace(staging, final)
    return final


def download_fruits(root: str | Path | None = None, url: str = FRUITS_URL,
                    manifest: dict[str, str] | None = None, progress: bool = True) -> Path:
    """``<root>/fruits-10/<class>/`` from :data:`FRUITS_URL` (see the module docstring); returns
    the folder. An existing folder is checked, not downloaded again."""
    root = Path(root) if root is not None else data_root()
    manifest = manifest if manifest is not None else fruits_manifest()
    final = root / "fruits-10"
    if final.is_dir():
        found = {p.relative_to(final).as_posix(): sha256_file(p) for p in final.rglob("*")
                 if p.is_file()}
        _compare(found, manifest, f"the files in {final}")
        return final
    archive = fetch(url, root / ".downloads" / f"fruits-{FRUITS_COMMIT[:12]}.zip",
                    progress=progress)
    staging = _stage(root, "fruits-10")
    try:
        got: dict[str, str] = {}
        with _discarded_if_bad(archive), zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename).parts
                if info.is_dir() or len(parts) != 5 or parts[1:3] not in (("data", "train"),
                                                                          ("data", "test")):
                    continue
                data = zf.read(info)
                digest = hashlib.sha256(data).hexdigest()
                name = (f"{FRUITS_RENAME.get(parts[3], parts[3])}/{digest[:12]}"
                        f"{PurePosixPath(parts[4]).suffix}")
                if name not in got:  # an exact duplicate within its class is dropped
                    got[name] = digest
                    (staging / name).parent.mkdir(exist_ok=True)
                    (staging / name).write_bytes(data)
            _compare(got, manifest, f"the fruit images of {url}")
        _done(staging, final)
        archive.unlink()
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _celeba_names(count: int) -> list[str]:
    return [f"{i:06d}.jpg" for i in range(1, count + 1)]


def _torchvision_celeba(root: Path) -> Path:
    """``img_align_celeba/`` through torchvision's downloader (Google Drive, md5-checked)."""
    try:
        import gdown  # noqa: F401 - torchvision's CelebA downloader needs it
    except ImportError as err:
        raise DownloadError("downloading CelebA needs gdown (torchvision's Google Drive "
                            "downloader): pip install 'colorlab[data]'") from err
    from .data import CelebA

    try:
        return CelebA._download(root)
    except RuntimeError as err:
        raise DownloadError(str(err)) from err


def download_celeba(root: str | Path | None = None, source: str | None = None,
                    sha256: str | None = None, count: int = CELEBA_COUNT,
                    progress: bool = True) -> Path:
    """``<root>/celeba-7k/`` holding ``000001.jpg``-``007200.jpg`` of CelebA's aligned faces.

    Default source: torchvision's downloader (into ``<root>/celeba/``, which is removed afterwards
    if this call created it). ``source``: the URL of a copy of ``img_align_celeba.zip`` (checked
    against ``sha256`` when given). ``count`` is for tests."""
    root = Path(root) if root is not None else data_root()
    final, names = root / "celeba-7k", _celeba_names(count)
    if final.is_dir():
        found = sorted(p.name for p in final.iterdir() if p.is_file())
        _compare({n: "" for n in found}, {n: "" for n in names}, f"the files in {final}")
        return final
    staging = _stage(root, "celeba-7k")
    try:
        if source is not None:  # one cached archive per source: another source is fetched
            key = hashlib.sha256(source.encode()).hexdigest()[:12]
            archive = fetch(source, root / ".downloads" / f"img_align_celeba-{key}.zip", sha256,
                            progress=progress)
            with _discarded_if_bad(archive), zipfile.ZipFile(archive) as zf:
                members = {PurePosixPath(n).name: n for n in zf.namelist()
                           if PurePosixPath(n).parent.name == "img_align_celeba"}
                _compare({n: "" for n in names if n in members}, {n: "" for n in names},
                         f"the images of {source}")
                for n in names:
                    (staging / n).write_bytes(zf.read(members[n]))
            archive.unlink()
        else:
            created = not (root / "celeba").exists()
            images = _torchvision_celeba(root)
            _compare({n: "" for n in names if (images / n).is_file()}, {n: "" for n in names},
                     f"the images in {images}")
            for n in names:
                shutil.copy(images / n, staging / n)
            if created:
                shutil.rmtree(root / "celeba", ignore_errors=True)
        return _done(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_dataset(name: str, root: str | Path | None = None, progress: bool = True,
                     source: str | None = None) -> Path:
    """``"celeba"`` or ``"fruits"`` into ``root`` (default ``$COLORLAB_DATA``); returns the folder."""
    if name == "fruits":
        return download_fruits(root, url=source or FRUITS_URL, progress=progress)
    if name == "celeba":
        return download_celeba(root, source=source, progress=progress)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


def add_data_command(sub) -> None:
    """Register ``colorlab data download`` on the sub-command parser of :mod:`colorlab.cli`."""
    p = sub.add_parser("data", help="download the book's real datasets")
    p.add_argument("action", choices=("download",))
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", default=None, help="data folder (default: $COLORLAB_DATA or ./data)")
    p.add_argument("--source", default=None, help="another URL of the archive (a mirror)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_data_command)


def _data_command(args) -> int:
    folder = download_dataset(args.dataset, args.root, progress=not args.quiet,
                              source=args.source)
    count = sum(1 for p in folder.rglob("*") if p.is_file())
    print(f"{args.dataset}: {count} files in {folder}, checked against the book's manifest")
    print(f"use it with: export COLORLAB_DATA={folder.parent.resolve()}")
    return 0
