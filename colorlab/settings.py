"""Where colorlab looks for data and writes results.

* ``COLORLAB_DATA``: folder holding the real datasets (``celeba-7k/``, ``fruits-10/<class>/``,
  or CelebA's ``img_align_celeba/``); default ``./data``. Nothing is downloaded unless asked.
* ``COLORLAB_RESULTS``: folder of recorded results (``results/`` of the repository by default;
  outside a checkout the chapters fetch it: :mod:`colorlab.results_fetch`).
* ``COLORLAB_PROFILE``: ``ci`` (seconds on CPU), ``default`` or ``full`` (GPU training).
* ``COLORLAB_CACHE``: where decoded datasets, CI-sized book runs and fetched results are cached;
  default ``~/.cache/colorlab``, ``off`` disables the cache.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["data_root", "results_root", "cache_root", "scratch_root", "checkout_root", "profile",
           "BOOK_PROFILES"]


#: the values of ``COLORLAB_PROFILE``: how much the book's chapters compute (``ci`` < ``default``
#: < ``full``; the reproduction's own sizes are ``colorlab.reproduce.PROFILES``)
BOOK_PROFILES = ("ci", "default", "full")


def _setting(name: str) -> str | None:
    """The environment variable ``name``, stripped; None when unset or empty (an empty setting
    means "use the default", never the current folder).

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, COLORLAB_DATA="  "):
    ...     _setting("COLORLAB_DATA") is None
    True
    """
    value = os.environ.get(name, "").strip()
    return value or None


def data_root() -> Path:
    """The data folder: ``$COLORLAB_DATA`` or ``./data``.

    >>> isinstance(data_root(), Path)
    True
    """
    return Path(_setting("COLORLAB_DATA") or "data").expanduser()


def results_root() -> Path:
    """The recorded-results folder: ``$COLORLAB_RESULTS``, else ``results/`` beside the package's
    repository (when run from a checkout), else ``./results``."""
    env = _setting("COLORLAB_RESULTS")
    if env:
        return Path(env).expanduser()
    repo = checkout_root()
    return repo / "results" if repo is not None else Path("results")


def checkout_root() -> Path | None:
    """The repository colorlab runs from (an editable install or a checkout), None for a wheel."""
    repo = Path(__file__).resolve().parent.parent
    return repo if (repo / "pyproject.toml").exists() else None


def cache_root() -> Path | None:
    """The cache folder from ``$COLORLAB_CACHE`` (default ``~/.cache/colorlab``); None when it is
    set to ``off`` (or ``0``, ``none``, empty).

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, COLORLAB_CACHE="off"):
    ...     cache_root() is None
    True
    """
    value = os.environ.get("COLORLAB_CACHE", str(Path.home() / ".cache" / "colorlab"))
    if value.strip().lower() in ("", "0", "off", "none"):
        return None
    return Path(value).expanduser()


def scratch_root() -> Path:
    """Where colorlab keeps what must be written somewhere (a CI-sized book run, a fetched
    ``results/``): :func:`cache_root`, or ``colorlab/`` in the temporary folder when the cache is
    off.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, COLORLAB_CACHE="off"):
    ...     scratch_root() == Path(tempfile.gettempdir()) / "colorlab"
    True
    """
    return cache_root() or Path(tempfile.gettempdir()) / "colorlab"


def profile() -> str:
    """The run profile from ``$COLORLAB_PROFILE`` (default ``"default"``); errors on a typo.

    >>> profile() in BOOK_PROFILES
    True
    """
    value = os.environ.get("COLORLAB_PROFILE", "default").strip().lower() or "default"
    if value not in BOOK_PROFILES:
        raise ValueError(f"COLORLAB_PROFILE must be one of {BOOK_PROFILES}, got {value!r}")
    return value
