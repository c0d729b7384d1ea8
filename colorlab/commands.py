"""Sub-commands of the ``colorlab`` CLI beyond ``info`` and ``bench``."""
from __future__ import annotations

import argparse

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the training, evaluation and colorization commands (see :mod:`colorlab.cli`)."""
