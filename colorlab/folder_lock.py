"""Folder locks: two processes never train into one run folder or write one results folder at once.

:class:`FolderLock` is an advisory ``fcntl.flock`` on a folder's lock file. The kernel releases it
when its process ends, however it ends: a lock left by a killed process never blocks.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .checkpoint import make_folder

__all__ = ["FolderLock", "FolderLocked"]


class FolderLocked(RuntimeError):
    """Another process holds the lock of a run or results folder."""


class FolderLock:
    """An exclusive advisory lock on ``folder`` for the life of a ``with`` block.

    The lock file is ``lock_file``, by default ``<parent>/.<name>.lock`` (beside the folder, so
    that the folder itself may be replaced by a rename while the lock is held); it holds the
    owner's PID while the lock is held and is removed when it is released. A second process
    (or a second lock in the same process) gets :class:`FolderLocked` naming that PID at once;
    it never waits. A lock file left by a killed process does not block: the kernel released its
    lock with the process. Where the file system has no locks (some network mounts) the folder is
    used unlocked, with a warning.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with FolderLock(pathlib.Path(d) / "run", "run folder"):
    ...         try:
    ...             FolderLock(pathlib.Path(d) / "run", "run folder").acquire()
    ...         except FolderLocked as err:
    ...             print(str(err).split(" by process")[0].endswith("run is in use"))
    True
    """

    def __init__(self, folder: str | Path, what: str = "folder",
                 lock_file: str | Path | None = None) -> None:
        self.folder, self.what = Path(folder), what
        absolute = self.folder.resolve()
        self.path = Path(lock_file) if lock_file is not None else \
            absolute.with_name(f".{absolute.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return self
        make_folder(self.path.parent)
        for _ in range(10):  # retried only if the holder removed the file while we opened it
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise FolderLocked(
                        f"{self.folder} is in use by process {owner} (another colorlab command "
                        f"on this {self.what}); wait for it to finish, or use another "
                        f"{self.what}") from None
                import warnings

                warnings.warn(f"cannot lock {self.folder} ({os.strerror(err.errno or 0)}): "
                              f"make sure no other process uses it", RuntimeWarning, stacklevel=2)
                return self
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)  # we locked a file its holder had just removed: take the new one
        raise FolderLocked(f"{self.folder}: could not take its lock {self.path}")

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # removed while still held, then released
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
