"""Safe files: atomic writes, all-or-nothing groups of writes, checkpoint loading, output checks.

* :func:`atomic_save`, :func:`atomic_write_bytes`, :func:`atomic_write_text`: written to a
  temporary file beside the target, flushed to disk, then renamed into place. A run killed at any
  moment (even ``kill -9``) leaves either the previous file or the new one, never a half-written
  file; a failed write (a full disk, say) raises :class:`OSError` saying so and leaves the previous
  file as it was.
* :func:`atomic_write_many`: several files replaced together, or none of them.
* :func:`load_checkpoint`: checkpoints hold only tensors and plain Python values, so they load
  with ``torch.load(weights_only=True)``; anything else is a :class:`CheckpointError`.
* :func:`check_output_file`: an output file checked before the work that writes it.

The lock that keeps two processes out of one folder is :mod:`colorlab.folder_lock`.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ._validation import check_path

__all__ = ["atomic_save", "atomic_write_text", "atomic_write_bytes", "atomic_write_many",
           "load_checkpoint", "CheckpointError", "make_folder", "file_in_the_way",
           "check_output_file", "CHECKPOINT_FORMAT", "CHECKPOINT_KEYS"]

CHECKPOINT_FORMAT = 1
#: keys every colorlab checkpoint (``checkpoint.pt`` and ``model.pt``) holds
CHECKPOINT_KEYS = ("format", "config", "model")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or from an incompatible run."""


def make_folder(folder: str | Path) -> Path:
    """``mkdir -p folder``, with an error that names the file in the way, if one is.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (pathlib.Path(d) / "f").touch()
    ...     try:
    ...         make_folder(pathlib.Path(d) / "f" / "sub")
    ...     except NotADirectoryError as err:
    ...         print(str(err).endswith("/f is a file, not a folder"))
    True
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = file_in_the_way(folder) or folder
        raise NotADirectoryError(f"cannot create the folder {folder}: {blocker} is a file, not "
                                 f"a folder") from None
    return folder


def file_in_the_way(folder: str | Path) -> Path | None:
    """``folder`` or the first of its parents that exists but is not a folder, if any: what
    stops ``mkdir -p folder``.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (pathlib.Path(d) / "f").touch()
    ...     print(file_in_the_way(pathlib.Path(d) / "f" / "sub").name, file_in_the_way(d))
    f None
    """
    folder = Path(folder)
    return next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)


def check_output_file(path: str | Path, overwrite: bool = False, option: str = "--out") -> Path:
    """Check, before any work is done, that the file ``path`` can be written: it is not a
    folder, it does not exist unless ``overwrite``, and its folder can be made and written to.
    ``option`` names the command-line option in the messages.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (pathlib.Path(d) / "notes.json").write_text("mine")
    ...     try:
    ...         check_output_file(pathlib.Path(d) / "notes.json")
    ...     except FileExistsError as err:
    ...         print(str(err).split(" exists")[1])
    ; pass --overwrite to replace it, or choose another --out
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file; remove it or choose another "
                                f"{option}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it, or choose "
                              f"another {option}")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write {path}: the folder {folder} is not "
                                            f"writable; choose another {option}")
    return path


def _is_write_error(err: BaseException) -> bool:
    """An OSError, or torch's C++ writer failing ("enforce fail at inline_container.cc ...",
    "PytorchStreamWriter failed writing file ...: file write failed")."""
    return isinstance(err, OSError) or (isinstance(err, RuntimeError) and any(
        s in str(err) for s in ("inline_container", "write failed", "failed writing")))


def _write_failed(path: Path, err: BaseException) -> OSError:
    """A one-line :class:`OSError` for a write that failed midway (disk full, quota, I/O error)."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    cause: BaseException | None = err  # torch keeps the writer's OSError as the context
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.errno:
        code = cause.errno
    else:
        code = errno.ENOSPC if free is not None and free < 64 * 2 ** 20 else errno.EIO
    space = f"{free / 2 ** 20:.0f} MB free there" if free is not None else "free space unknown"
    return OSError(code, f"could not write {path} ({os.strerror(code)}; {space}); the previous "
                         f"{path.name}, if any, is unchanged: free some space or choose another "
                         f"folder, then run again")


def _write_temp(path: Path, write: Callable) -> Path:
    """Write through ``write(fh)`` into a flushed temporary file beside ``path``; returns it."""
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: a folder of that name is in the way")
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise PermissionError(errno.EACCES, f"cannot write {path}: the folder {path.parent} is "
                                            f"not writable; choose another folder") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results unreadable to others
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if _is_write_error(err):
            raise _write_failed(path, err) from err
        raise
    return Path(tmp)


def _atomic(path: Path, write: Callable) -> None:
    path = Path(path)
    tmp = _write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(obj: object, path: str | Path) -> None:
    """``torch.save(obj, path)`` through a temporary file and an atomic rename.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_save({"x": torch.ones(2)}, pathlib.Path(d) / "ck.pt")
    ...     sorted(p.name for p in pathlib.Path(d).iterdir())
    ['ck.pt']
    """
    _atomic(Path(path), lambda fh: torch.save(obj, fh))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write a file atomically."""
    _atomic(Path(path), lambda fh: fh.write(data))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically (UTF-8)."""
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_write_many(files: dict[Path, bytes]) -> None:
    """Replace several files together: all of them, or (after any failure) none.

    Every new file is written and flushed to a temporary file first; only when all are written
    are they renamed into place, each existing file being moved aside until the whole group is
    in. A failure at any point restores every earlier file (``colorlab colorize --overwrite``).
    Only files are replaced: a folder in the place of a target is an error, before any write.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a, b = pathlib.Path(d) / "a.txt", pathlib.Path(d) / "b.txt"
    ...     atomic_write_many({a: b"1", b: b"2"})
    ...     a.read_text(), b.read_text(), sorted(p.name for p in pathlib.Path(d).iterdir())
    ('1', '2', ['a.txt', 'b.txt'])
    """
    for target in files:
        if Path(target).is_dir():
            raise IsADirectoryError(f"cannot write {target}: a folder of that name is in the way")
    staged: dict[Path, Path] = {}
    moved: dict[Path, Path] = {}  # target -> its previous file, moved aside
    placed: list[Path] = []
    try:
        for target, data in files.items():
            staged[Path(target)] = _write_temp(Path(target), lambda fh, d=data: fh.write(d))
        for target, tmp in staged.items():
            if target.exists():
                aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                              dir=target.parent)) / target.name
                os.replace(target, aside)
                moved[target] = aside
            os.replace(tmp, target)
            placed.append(target)
    except BaseException:
        for target in placed:
            target.unlink(missing_ok=True)
        for target, aside in moved.items():
            try:
                os.replace(aside, target)
            except OSError:  # keep restoring the others; this one stays in its .old folder
                continue
            aside.parent.rmdir()
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    for aside in moved.values():
        shutil.rmtree(aside.parent, ignore_errors=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    mmap: bool = False) -> dict:
    """Load a colorlab checkpoint safely (``weights_only=True``) or raise :class:`CheckpointError`;
    ``mmap=True`` maps the tensors instead of reading them (to look at the other fields).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (pathlib.Path(d) / "empty.pt").touch()
    ...     try:
    ...         load_checkpoint(pathlib.Path(d) / "empty.pt")
    ...     except CheckpointError as err:
    ...         print(str(err).split(": ", 1)[0].endswith("empty.pt is empty (0 bytes)"))
    True
    """
    check_path(path)
    path = Path(path)
    if path.is_dir():
        hint = next((f"; pass {path / name}" for name in ("model.pt", "checkpoint.pt")
                     if (path / name).is_file()), "")
        raise CheckpointError(f"{path} is a folder, not a checkpoint file{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a colorlab checkpoint; "
                              f"pass a run's model.pt or checkpoint.pt")
    try:
        try:
            ck = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError:  # mapped: a file of the legacy format, or a file system without
            if not mmap:      # mmap; read as a whole, as the trainer does
                raise
            ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        reason = lines[0].split(". ")[0][:160] if lines else "no details"
        raise CheckpointError(f"{path} is corrupt or not a colorlab checkpoint "
                              f"({type(err).__name__}: {reason})") from err
    missing = [k for k in CHECKPOINT_KEYS if k not in ck] if isinstance(ck, dict) else []
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or missing:
        what = f" (it lacks {', '.join(repr(k) for k in missing)})" if missing else ""
        raise CheckpointError(f"{path} is not a colorlab checkpoint of format "
                              f"{CHECKPOINT_FORMAT}{what}")
    if not isinstance(ck["config"], dict) or not isinstance(ck["model"], dict):
        raise CheckpointError(f"{path} is not a colorlab checkpoint: its 'config' and 'model' "
                              f"must be dictionaries")
    return ck


def __getattr__(name: str):
    """``colorlab.checkpoint.FolderLock`` and ``FolderLocked`` still work: they live in
    :mod:`colorlab.folder_lock` now (imported on first use: that module imports this one)."""
    if name in ("FolderLock", "FolderLocked"):
        from . import folder_lock

        return getattr(folder_lock, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
