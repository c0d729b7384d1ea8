"""Atomic checkpoint files: written to a temporary file, flushed, then renamed into place.

A run killed at any moment (even ``kill -9``) leaves either the previous checkpoint or the new
one, never a half-written file. Checkpoints hold only tensors and plain Python values, so they
load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_save", "atomic_write_text", "atomic_write_bytes", "load_checkpoint",
           "CheckpointError",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, or from an incompatible run."""


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results unreadable to others
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a colorlab checkpoint safely (``weights_only=True``) or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = str(err).split(". ")[0].splitlines()[0][:160]
        raise CheckpointError(f"{path} is corrupt or not a colorlab checkpoint "
                              f"({type(err).__name__}: {reason})") from err
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or "model" not in ck:
        raise CheckpointError(f"{path} is not a colorlab checkpoint of format {CHECKPOINT_FORMAT}")
    return ck
