"""The ``colorlab`` command line: ``colorlab --version``, ``colorlab info``, ``colorlab bench``,
``colorlab train``, ``colorlab evaluate``, ``colorlab reproduce``, ``colorlab colorize``.

Every failure is one line on stderr (``colorlab: error: ...``) and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys

from . import __version__
from .paths import data_root, profile, results_root

__all__ = ["main", "info_lines", "OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2), like every
    other error of the command line."""

    def error(self, message: str):
        self.exit(2, f"colorlab: error: {message} (see {self.prog} --help)\n")


def info_lines() -> list[str]:
    """Versions, device and data locations, one fact per line."""
    import numpy
    import torch

    lines = [f"colorlab {__version__}", f"python {platform.python_version()}",
             f"torch {torch.__version__}", f"numpy {numpy.__version__}"]
    try:
        import torchvision
        lines.append(f"torchvision {torchvision.__version__}")
    except ImportError:
        lines.append("torchvision not installed")
    if torch.cuda.is_available():
        lines.append(f"device cuda: {torch.cuda.get_device_name(0)}")
    else:
        lines.append(f"device cpu ({torch.get_num_threads()} threads); no CUDA GPU found")
    root = data_root()
    lines.append(f"data root {root.resolve()} (set COLORLAB_DATA to change)")
    for name in ("celeba-7k", "img_align_celeba", "fruits-10"):
        where = root / name
        lines.append(f"  {name}: {'found' if where.is_dir() else 'missing'}")
    lines.append(f"results {results_root().resolve()} (set COLORLAB_RESULTS to change)")
    lines.append(f"profile {profile()} (set COLORLAB_PROFILE to ci, default or full)")
    return lines


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="colorlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"colorlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="versions, device and where data is looked for")
    from .bench import add_bench_command
    from .commands import add_commands

    add_bench_command(sub)
    add_commands(sub)
    return parser


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line, without the ``[Errno N]`` prefix of OS errors."""
    text = " ".join(str(err).split()) or type(err).__name__
    text = re.sub(r"^\[Errno \d+\] ", "", text)
    return text if len(text) <= 600 else text[:597] + "..."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``colorlab`` console script.

    Exit codes: 0 success, 2 an error the user can act on (bad input, missing or corrupt files, a
    folder in use, a full disk, a diverged run), 1 an unexpected error (a bug: set
    ``COLORLAB_DEBUG=1`` for its traceback), 130 interrupted. Every error is one line on stderr.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "info":
            print("\n".join(info_lines()))
            return 0
        return args.run(args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError, ArithmeticError) as err:
        if os.environ.get("COLORLAB_DEBUG"):
            raise
        print(f"colorlab: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("colorlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: still one line, with a way to see more
        if os.environ.get("COLORLAB_DEBUG"):
            raise
        print(f"colorlab: internal error: {type(err).__name__}: {_one_line(err)} (please report "
              f"it; COLORLAB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
