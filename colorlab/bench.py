"""Benchmarks that print figures (``python -m colorlab.bench core`` or ``colorlab bench core``).

``core``: ``rgb_to_lab`` against :func:`skimage.color.rgb2lab` (float32, a batch of
256x176x176 images) and ``soft_encode`` against ``scipy.spatial.cKDTree(bins).query(points, k=5,
workers=-1)`` plus the Gaussian weights (256x44x44 ab values from random sRGB colours). Each
figure is the median of several repeats after a warm-up; ratios > 1 mean colorlab is faster.
``train`` lives in :mod:`colorlab.train_bench`.
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["median_seconds", "bench_core", "add_bench_command", "main"]


def median_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_core(batch: int = 256, size: int = 176, repeats: int = 5, seed: int = 0) -> dict:
    """Measure the core ratios; returns a dict of seconds and ratios (also printed by main)."""
    from scipy.spatial import cKDTree
    from skimage.color import rgb2lab

    from .color import rgb_to_lab
    from .encode import soft_encode
    from .gamut import ab_bins

    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(batch, 3, size, size, generator=gen)
    rgb_hwc = rgb.permute(0, 2, 3, 1).numpy().copy()
    t_sk = median_seconds(lambda: rgb2lab(rgb_hwc), repeats)
    t_lab = median_seconds(lambda: rgb_to_lab(rgb), repeats)

    small = size // 4
    ab = rgb_to_lab(torch.rand(batch, 3, small, small, generator=gen))[:, 1:].contiguous()
    points = ab.permute(0, 2, 3, 1).reshape(-1, 2).double().numpy()
    tree = cKDTree(ab_bins(torch.float64).numpy())

    def kdtree_encode():
        d, i = tree.query(points, k=5, workers=-1)
        w = np.exp(-d ** 2 / (2 * 5.0 ** 2))
        return i, w / w.sum(axis=1, keepdims=True)

    t_kd = median_seconds(kdtree_encode, repeats)
    t_enc = median_seconds(lambda: soft_encode(ab), repeats)
    return {"threads": torch.get_num_threads(), "rgb_to_lab_s": t_lab, "skimage_rgb2lab_s": t_sk,
            "rgb_to_lab_speedup": t_sk / t_lab, "soft_encode_s": t_enc, "ckdtree_s": t_kd,
            "soft_encode_speedup": t_kd / t_enc, "batch": batch, "size": size}


def add_bench_command(sub) -> None:
    """Register ``colorlab bench`` on the sub-command parser of :mod:`colorlab.cli` (the one
    argument parser of the command line)."""
    from .commands import add_precision_option

    parser = sub.add_parser("bench", help="benchmarks: core (CPU ratios), train (images/s)",
                            description=__doc__)
    parser.add_argument("what", choices=["core", "train"], help="which benchmark")
    parser.add_argument("--batch", type=int, default=None, help="images per batch")
    parser.add_argument("--size", type=int, default=176, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5,
                        help="core: timed runs; train: timed windows (the median is reported)")
    parser.add_argument("--steps", type=int, default=20, help="train: steps per timed window")
    parser.add_argument("--width", type=float, default=1.0, help="train: network width")
    parser.add_argument("--device", default=None, help="train: cuda or cpu (default: best)")
    parser.add_argument("--no-compile", action="store_true", help="train: skip torch.compile")
    parser.add_argument("--processes", type=int, default=1,
                        help="train: models trained at once, one process each (summed rate)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="train: also write the result as JSON to FILE")
    add_precision_option(parser)
    parser.set_defaults(run=_run)


def _run(args) -> int:
    if args.what == "core":
        r = bench_core(batch=args.batch or 256, size=args.size, repeats=args.repeats)
        print(f"core benchmark on {r['threads']} CPU threads, float32, batch {r['batch']}")
        print(f"rgb_to_lab  {r['batch']}x{r['size']}x{r['size']}: colorlab {r['rgb_to_lab_s']:.3f} s, "
              f"skimage {r['skimage_rgb2lab_s']:.3f} s -> {r['rgb_to_lab_speedup']:.2f}x faster")
        s = r["size"] // 4
        print(f"soft_encode {r['batch']}x{s}x{s} (k=5): colorlab {r['soft_encode_s']:.3f} s, "
              f"cKDTree+weights {r['ckdtree_s']:.3f} s -> {r['soft_encode_speedup']:.2f}x faster")
        return 0
    from .distributed import setup, shutdown
    from .train_bench import bench_train, format_train_bench

    ctx = setup(args.device)  # under torchrun: every rank trains its shard with DDP
    result = bench_train(batch=args.batch, size=args.size, steps=args.steps, width=args.width,
                         device=args.device, compile=not args.no_compile, repeats=args.repeats,
                         precision=args.precision, processes=args.processes)
    shutdown()
    if ctx.main:
        print(format_train_bench(result))
        if args.json:
            from .checkpoint import atomic_write_text

            atomic_write_text(json.dumps(result, indent=1), args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m colorlab.bench ARGS`` is ``colorlab bench ARGS``."""
    import sys

    from .cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
