"""``SIGUSR1`` prints every thread's Python stack (used by the CLI and by the worker processes of
:mod:`colorlab.worker_pool`): ``kill -USR1 <pid>`` then shows where a long run is without stopping it."""
from __future__ import annotations

import faulthandler
import io
import signal
import sys

__all__ = ["enable_stack_dumps"]


def enable_stack_dumps() -> bool:
    """Make ``SIGUSR1`` print every thread's stack to stderr instead of ending the process, where
    the platform has that signal and stderr is a real file (else the process's original stderr;
    a notebook's or a test's captured stream has no file descriptor). Returns whether it did.

    >>> enable_stack_dumps() == hasattr(signal, "SIGUSR1")
    True
    """
    if not hasattr(signal, "SIGUSR1"):
        return False
    for stream in (sys.stderr, sys.__stderr__):
        try:
            faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True)
            return True
        except (AttributeError, ValueError, io.UnsupportedOperation):
            continue  # no usable file descriptor: try the next stream
    return False
