"""``SIGTERM`` as an exception in the command line, so that a terminated command cleans up as an
interrupted one does (``kill <pid>``, ``timeout``, a batch system's or a notebook host's stop).

Python's default for ``SIGTERM`` ends the process at once: no ``finally`` block runs, so a
fetch's temporary folder, a half-staged results folder or the worker processes of
:mod:`colorlab.worker_pool` are left behind. Under :func:`terminated_as_exception` the signal
raises :class:`Terminated` where the command is, a :class:`KeyboardInterrupt`, so every clean-up
that an interrupt (Ctrl-C) runs runs for it too, and the CLI exits with 143 (128 + 15).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "terminated_as_exception"]


class Terminated(KeyboardInterrupt):
    """The process received ``SIGTERM``; raised where it was, so that clean-ups run."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def terminated_as_exception() -> Iterator[bool]:
    """Within the block, ``SIGTERM`` raises :class:`Terminated`; the previous handler comes back
    after it. Yields whether it could (only the main thread may set a signal handler).

    >>> import os
    >>> before = signal.getsignal(signal.SIGTERM)
    >>> with terminated_as_exception() as active:
    ...     try:
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ...     except Terminated:
    ...         print("cleaned up")
    cleaned up
    >>> active, signal.getsignal(signal.SIGTERM) is before
    (True, True)
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield True
    finally:
        signal.signal(signal.SIGTERM, previous)
