"""The ``colorlab`` command line: ``colorlab --version``, ``colorlab info``, ``colorlab bench``,
``colorlab train``, ``colorlab evaluate``, ``colorlab reproduce``, ``colorlab colorize``.

Every failure is one line on stderr (``colorlab: error: ...``) and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import platform
import sys

from . import __version__
from .paths import data_root, profile, results_root

__all__ = ["main", "info_lines"]


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
    parser = argparse.ArgumentParser(prog="colorlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"colorlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="versions, device and where data is looked for")
    bench = sub.add_parser("bench", help="benchmarks (core, train)", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    from .commands import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``colorlab`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "info":
            print("\n".join(info_lines()))
            return 0
        if args.command == "bench":
            from .bench import main as bench_main

            return bench_main(args.rest)
        return args.run(args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as err:
        print(f"colorlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("colorlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
