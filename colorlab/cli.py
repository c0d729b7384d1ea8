"""The colorlab command line, one argument parser: ``colorlab --version``, ``colorlab info``,
``colorlab train``, ``evaluate``, ``reproduce`` and ``colorize`` (this module),
``colorlab bench`` (:mod:`colorlab.bench`), ``colorlab data download`` (:mod:`colorlab.download`)
and ``colorlab results fetch`` (:mod:`colorlab.results`, which fetches with
:mod:`colorlab.results_fetch`).

Every failure is one line on stderr ("colorlab: error: ...") and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path

from . import __version__
from ._stacks import enable_stack_dumps
from ._termination import Terminated, terminated_as_exception
from .settings import data_root, profile, results_root

__all__ = ["main", "info_lines", "OneLineParser", "add_precision_option",
           "positive_int"]


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
    from .bench import add_bench_command
    from .download import add_data_command
    from .results import add_results_command

    # every sub-command, in the order of `colorlab --help`; the modules that own bench, results
    # and data register theirs (torch is imported only when a command runs)
    sub.add_parser("info", help="versions, device and where data is looked for")
    _add_commands(sub)
    add_bench_command(sub)
    add_results_command(sub)
    add_data_command(sub)
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
    ``COLORLAB_DEBUG=1`` for its traceback), 130 interrupted (Ctrl-C), 143 terminated
    (``SIGTERM``, which cleans up as an interrupt does: :mod:`colorlab._termination`). Every
    error is one line on stderr. ``SIGUSR1`` prints every thread's stack to stderr and lets the
    command go on.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    enable_stack_dumps()  # kill -USR1 <pid>: where a long command is, on stderr
    with terminated_as_exception():
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the parsed command; every outcome is an exit code and at most one line on stderr."""
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
    except Terminated:
        print("colorlab: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("colorlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: still one line, with a way to see more
        if os.environ.get("COLORLAB_DEBUG"):
            raise
        print(f"colorlab: internal error: {type(err).__name__}: {_one_line(err)} (please report "
              f"it; COLORLAB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def positive_int(text: str) -> int:
    """An ``argparse`` type: ``text`` as an integer >= 1, else a usage error that says so.

    >>> positive_int("3")
    3
    """
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision {auto,bf16,fp16,fp32}`` (:mod:`colorlab.config`)."""
    from .config import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 on GPUs of compute capability >= 8.0, fp16 with a "
                             "gradient scaler on older GPUs (T4, V100), fp32 on CPU")


def _dataset_splits(name: str, size: int, folder: str | None = None):
    from .data import load_images
    from .distributed import context, main_first
    from .image_folder import ImageFolder

    # under torchrun rank 0 decodes (and caches) first, the other ranks then read its cache
    data = main_first(lambda: ImageFolder(folder, size, class_subfolders=True) if folder
                      else load_images(name, size, fallback=False))
    if context().main:
        print(data.summary())
    return data.splits(seed=0)


def _train(args) -> int:
    from .distributed import setup, shutdown
    from .prior import prior_from_images
    from .train import TrainConfig, Trainer

    ctx = setup(args.device)  # joins the process group under torchrun (colorlab.distributed)
    splits = _dataset_splits(args.dataset, args.size, args.images)
    # --batch-size is per process; the default lr is scaled for the effective batch
    lr = args.lr if args.lr is not None else TrainConfig.scaled_lr(args.batch_size *
                                                                   ctx.world_size)
    config = TrainConfig(loss=args.loss, width=args.width, epochs=args.epochs,
                         batch_size=args.batch_size, lr=lr, size=args.size, seed=args.seed,
                         compile=args.compile, checkpoint_every=args.checkpoint_every,
                         precision=args.precision)
    weights = None
    if args.loss == "rebal":
        weights = prior_from_images(splits["train"].images, lam=config.lam)[2]
    trainer = Trainer(config, splits["train"], splits["val"], args.run_dir, weights=weights,
                      device=args.device, progress=ctx.main)
    trainer.cuda_graphs = args.cuda_graphs
    history = trainer.fit(resume=True)
    shutdown()
    last = history[-1]
    if ctx.main:
        if args.cuda_graphs and not trainer.graphed:
            from .step_graph import NOT_RECORDED

            print(NOT_RECORDED)
        print(f"trained {len(history)} epochs on {ctx.world_size} process(es), effective batch "
              f"{config.batch_size * ctx.world_size}, lr {lr:.3g}: train loss "
              f"{last['train_loss']:.4f}, val loss {last['val_loss']:.4f}; model in "
              f"{Path(args.run_dir) / 'model.pt'}")
    return 0


def _evaluate(args) -> int:
    from .checkpoint import check_output_file
    from .distributed import setup, sharded_predict_ab, shutdown
    from .evaluate import baseline_predictions, evaluate_predictions, load_classifier
    from .prior import prior_from_images
    from .train import load_model

    if args.out:  # before the evaluation runs, not after
        check_output_file(args.out, args.overwrite)
        if any(Path(args.out).resolve() == Path(ck).resolve() for ck in args.checkpoint):
            raise ValueError(f"--out {args.out} is one of the checkpoints; choose another --out")
    # every checkpoint is read before the data: a missing or mismatched one fails at once
    loaded = [(str(ck), *load_model(ck, "cpu")) for ck in args.checkpoint]
    sizes = sorted({config.size for _, _, config in loaded})
    if len(sizes) > 1:
        raise ValueError(f"the checkpoints were trained at different sizes ("
                         f"{', '.join(f'{s}x{s}' for s in sizes)}); evaluate each size in its "
                         f"own call, with its --size")
    if sizes and sizes[0] != args.size:
        raise ValueError(f"{loaded[0][0]} was trained at {sizes[0]}x{sizes[0]}; pass --size "
                         f"{sizes[0]}")
    if len({name for name, _, _ in loaded}) < len(loaded):
        raise ValueError("the same --checkpoint is given twice")
    ctx = setup(args.device or "cpu")  # under torchrun the ranks share out the predictions
    device = ctx.device(args.device or "cpu")
    splits = _dataset_splits(args.dataset, args.size)
    predictions = baseline_predictions(splits["test"], splits["train"])
    for name, model, _ in loaded:
        if name in predictions:  # a file named like a baseline would replace its row
            raise ValueError(f"--checkpoint {name} has the name of a baseline; rename the file")
        predictions[name] = sharded_predict_ab(model.to(device), splits["test"].images,
                                               device=device)
    shutdown()
    if not ctx.main:  # rank 0 computes the metrics from every rank's predictions
        return 0
    prior = prior_from_images(splits["train"].images)[1]
    clf = None
    if args.classifier != "none":
        clf = load_classifier(args.classifier, device)
    metrics = evaluate_predictions(splits["test"], predictions, prior, clf)
    for name, m in metrics.items():
        parts = [f"{k} {m[k]:.1f}" for k in ("auc", "rebalanced_auc", "classifier_accuracy",
                                               "agreement") if k in m]
        print(f"{name}: " + ", ".join(parts))
    if args.out:
        from .checkpoint import atomic_write_text

        atomic_write_text(json.dumps(metrics), args.out)
    return 0


def _reproduce(args) -> int:
    from .distributed import shutdown
    from .reproduce import reproduce

    out = args.out if args.out is not None else ("results" if args.profile == "full"
                                                  else f"results-{args.profile}")
    reproduce(out, profile=args.profile, force=args.force, datasets=tuple(args.datasets),
              work_dir=args.work_dir, device=args.device,
              classifier=None if args.classifier == "none" else args.classifier,
              epochs=args.epochs, seeds=args.seeds, workers=args.workers,
              progress=not args.quiet, bench=args.bench,
              compile=args.compile, cuda_graphs=args.cuda_graphs, precision=args.precision)
    shutdown()  # of the process group reproduce joined under torchrun
    return 0


def _colorize(args) -> int:
    from .colorize import colorize_files

    for path in colorize_files(args.images, args.checkpoint, args.out, T=args.temperature,
                               head=args.head, overwrite=args.overwrite,
                               device=args.device or "cpu"):
        print(path)
    return 0


def _add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``train``, ``evaluate``, ``reproduce`` and ``colorize``."""
    from .config import LOSSES
    from .data import LOADABLE
    from .decode import DEFAULT_T
    from .evaluate import CLASSIFIERS
    from .models import HEADS
    from .report import DATASETS
    from .reproduce import PROFILES

    datasets, classifiers = LOADABLE, (*CLASSIFIERS, "none")
    p = sub.add_parser("train", help="train one model on a dataset's training split")
    p.add_argument("--dataset", choices=datasets, default="sample")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="train on an image folder instead (class subfolders, as ImageNet's)")
    p.add_argument("--loss", choices=LOSSES, default="rebal")
    p.add_argument("--run-dir", required=True, help="folder for checkpoints and the final model")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="per process (torchrun: the effective batch is nproc x this)")
    p.add_argument("--lr", type=float, default=None,
                   help="default: 3e-5 * sqrt(effective batch / 8)")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--size", type=positive_int, default=88)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=positive_int, default=1)
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="record each step once as a CUDA graph and replay it (GPU only)")
    p.add_argument("--device", default=None)
    add_precision_option(p)
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="AuC, rebalanced AuC and classifier accuracy on a test split")
    p.add_argument("--dataset", choices=datasets, default="sample")
    p.add_argument("--checkpoint", action="append", default=[], help="model.pt (repeatable)")
    p.add_argument("--size", type=positive_int, default=88)
    p.add_argument("--classifier", choices=classifiers, default=CLASSIFIERS[0])
    p.add_argument("--out", default=None, help="write all metrics as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--device", default=None)
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("reproduce", help="the report's runs (3 seeds each) and results/")
    p.add_argument("--profile", choices=tuple(PROFILES), default="full")
    p.add_argument("--out", default=None,
                   help="results folder (default: results/ for --profile full, results-ci/ for ci)")
    p.add_argument("--force", action="store_true",
                   help="replace --out as a whole even if it holds a larger reproduction (e.g. a "
                   "recorded GPU run) or files reproduce did not write, and discard an unfinished "
                   "reproduction of other settings: everything in --out is deleted")
    p.add_argument("--work-dir", default=None, help="checkpoints (default runs/<profile>)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--epochs", type=positive_int, default=None, help="override the profile")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="seeds per configuration (default: the profile's, 3 full, 2 ci)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="runs trained at once, one process each (default: 1 on a CPU, up to 9 "
                        "on a GPU)")
    p.add_argument("--classifier", choices=classifiers, default=CLASSIFIERS[0])
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--bench", action="store_true", help="record `colorlab bench train` first")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the models (default: the profile's, off)")
    p.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="record each run's step as a CUDA graph (default: the profile's, off)")
    add_precision_option(p)
    p.set_defaults(run=_reproduce)

    p = sub.add_parser("colorize", help="colorize image files with a trained model")
    p.add_argument("images", nargs="+", help="image files (any size)")
    p.add_argument("--checkpoint", required=True, help="a run's model.pt or checkpoint.pt")
    p.add_argument("--out", default="colorized", help="output folder (default: colorized/)")
    p.add_argument("--temperature", type=float, default=None,
                   help=f"annealed-mean T (default {DEFAULT_T})")
    p.add_argument("--head", choices=HEADS, default=None,
                   help="fail unless the checkpoint has this head")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--device", default=None)
    p.set_defaults(run=_colorize)


if __name__ == "__main__":
    raise SystemExit(main())
