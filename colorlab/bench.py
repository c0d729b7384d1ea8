"""Benchmarks that print figures: ``colorlab bench core`` and ``colorlab bench train``
(also ``python -m colorlab.bench ...``).

``core``: ``rgb_to_lab`` against :func:`skimage.color.rgb2lab` (float32, a batch of
256x176x176 images) and ``soft_encode`` against ``scipy.spatial.cKDTree(bins).query(points, k=5,
workers=-1)`` plus the Gaussian weights (256x44x44 ab values from random sRGB colours). Each
figure is the median of several repeats after a warm-up; ratios > 1 mean colorlab is faster.

``train``: training images/s of the real trainer against the device's ceiling, the device's
measured dense matmul rate in the run's precision (bf16 on Ampere and newer GPUs, fp16 on older
ones, float32 on CPU: :mod:`colorlab.config`) divided by the FLOPs of one trained image
(:mod:`colorlab.throughput`: 30.45 GFLOP forward at 176x176, width 1, so 91.4 GFLOP trained).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from ._validation import check_positive_int
from .checkpoint import atomic_write_text, check_output_file
from .cli import add_precision_option, main as cli_main, positive_int
from .color import rgb_to_lab
from .config import default_device, device_name, resolve_precision
from .data import ColorizationDataset
from .distributed import setup, shutdown
from .encode import soft_encode
from .gamut import ab_bins
from .models import ColorizationNet
from .step_graph import NOT_RECORDED, WARMUP_STEPS
from .throughput import forward_flops, matmul_ceiling, step_of
from .train import TrainConfig, Trainer
from .worker_pool import mps_active, run_jobs, wait_for_others

__all__ = ["median_seconds", "bench_core", "bench_train", "synthetic_dataset", "format_train_bench",
           "add_bench_command", "main"]


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


def _windows(kwargs: dict) -> dict:
    """Images/s of each timed window of one benchmark process (a :func:`colorlab.worker_pool.run_jobs` job)."""
    dev, batch, size = kwargs["device"], kwargs["batch"], kwargs["size"]
    config = TrainConfig(loss=kwargs["loss"], width=kwargs["width"], batch_size=batch, size=size,
                         compile=kwargs["compile"], lr=TrainConfig.scaled_lr(batch),
                         precision=kwargs["precision"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, synthetic_dataset(batch * 2, size), None, tmp, device=dev,
                          progress=False)
        trainer.defer_exactness = not kwargs.get("sync_search", False)
        trainer.cuda_graphs = kwargs.get("cuda_graphs", False)
        windows = trainer.benchmark(steps=kwargs["steps"], warmup=kwargs["warmup"],
                                    repeats=kwargs["repeats"], on_ready=wait_for_others)
    return {"windows": windows, "compiled": trainer.compiled, "cuda_graph": trainer.graphed,
            "world_size": trainer.dist.world_size}


def synthetic_dataset(n: int, size: int, seed: int = 0) -> ColorizationDataset:
    """``n`` random uint8 images of ``size x size`` as an unlabelled dataset: what the training
    benchmark trains on (the pixel values do not change a step's cost).

    >>> synthetic_dataset(4, 16).images.shape
    torch.Size([4, 3, 16, 16])
    """
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
    return ColorizationDataset(images, torch.full((n,), -1), [f"{i}" for i in range(n)], [],
                               "synthetic", size, source="synthetic")


def bench_train(batch: int | None = None, size: int = 176, steps: int = 20, width: float = 1.0,
                device: str | torch.device | None = None, compile: bool = True, warmup: int = 5,
                loss: str = "ce", repeats: int = 5, precision: str = "auto",
                processes: int = 1, sync_search: bool = False, cuda_graphs: bool = False) -> dict:
    """Measure training images/s on random images (the data values do not change the cost).

    ``images_per_s`` is the median over ``repeats`` timed windows of ``steps`` steps (each
    window's rate in ``images_per_s_windows``): on an H100 single 20-step windows of the same
    configuration ranged from 3,407 to 3,909 images/s.

    ``processes > 1`` trains that many independent models at once, each in its own process on the
    same device (:mod:`colorlab.worker_pool`: how ``colorlab reproduce`` trains its runs): the
    processes start their timed windows together, each window's rate is the sum over the
    processes, and ``images_per_s`` is the median of those sums.

    ``sync_search=True`` measures the step as colorlab trained before the search's exactness
    flag was kept on the device (:attr:`colorlab.train.Trainer.defer_exactness`): each step reads
    it back, waiting for the device's queue.

    ``cuda_graphs=True`` records the model's part of the step once as a CUDA graph and replays it
    (:attr:`colorlab.train.Trainer.cuda_graphs`, :mod:`colorlab.step_graph`); the record's
    ``cuda_graph`` says whether every process recorded one (never on a CPU).

    >>> r = bench_train(batch=2, size=16, steps=1, width=0.0625, device="cpu", warmup=0,
    ...                 repeats=1)
    >>> r["images_per_s"] > 0, r["processes"]
    (True, 1)
    """
    dev = default_device(device)
    cuda = dev.type == "cuda"
    batch = check_positive_int(batch or (128 if cuda else 8), "batch")
    processes = check_positive_int(processes, "processes")
    job = {"device": str(dev), "batch": batch, "size": size, "loss": loss, "width": width,
           "compile": compile and cuda, "precision": precision, "steps": steps,
           "warmup": _warmup(warmup, compile and cuda, cuda_graphs), "repeats": repeats,
           "sync_search": bool(sync_search), "cuda_graphs": bool(cuda_graphs)}
    results = [r for _, r in run_jobs(_windows, [job] * processes, workers=processes,
                                      barrier=processes > 1)]
    windows = [sum(r["windows"][i] for r in results) for i in range(repeats)]
    images_per_s = statistics.median(windows)
    flops = 3 * forward_flops(ColorizationNet(TrainConfig(loss=loss).head, width).to(dev), size)
    used = resolve_precision(precision, dev)
    ceiling = matmul_ceiling(dev, precision=used)
    return {"device": device_name(dev), "images_per_s": images_per_s,
            "world_size": results[0]["world_size"],  # > 1 under torchrun: per process, with DDP
            "processes": processes, "mps": mps_active() if cuda else False,
            "images_per_s_windows": windows, "batch": batch, "size": size,
            "width": width, "compile": all(r["compiled"] for r in results), "precision": used,
            "sync_search": bool(sync_search),
            "cuda_graph": all(r["cuda_graph"] for r in results), "steps": steps,
            "gflop_per_image": flops / 1e9, "matmul_tflops": ceiling / 1e12,
            "ceiling_images_per_s": ceiling / flops, "fraction_of_ceiling": images_per_s * flops
            / ceiling}


def _warmup(warmup: int, compiled: bool, graphs: bool) -> int:
    """Untimed steps: at least 3 to compile, and the graph's eager warm-up plus its recording.

    >>> _warmup(0, compiled=False, graphs=False), _warmup(0, True, False), _warmup(5, False, True)
    (0, 3, 5)
    >>> _warmup(0, compiled=False, graphs=True) == WARMUP_STEPS + 1
    True
    """
    return max(warmup, 3 if compiled else 0, WARMUP_STEPS + 1 if graphs else 0)


def _timing(r: dict) -> str:
    """How the rate was timed (records made before the median had a single window)."""
    windows = r.get("images_per_s_windows")
    if not windows or len(windows) == 1:
        return f"{r['steps']} timed steps"
    return (f"median of {len(windows)} windows of {r['steps']} steps: {min(windows):.1f} to "
            f"{max(windows):.1f}")


def _precision(r: dict) -> str:
    """The precision of a record (records made before the setting say ``bf16: true/false``)."""
    return r.get("precision") or ("bf16" if r.get("bf16") else "fp32")


def format_train_bench(r: dict) -> str:
    """Human-readable lines of :func:`bench_train`'s result."""
    ddp = f", per process of {r['world_size']} (DDP)" if r.get("world_size", 1) > 1 else ""
    if r.get("processes", 1) > 1:
        ddp += (f", {r['processes']} models trained at once in separate processes (summed)"
                + (" under MPS" if r.get("mps") else ""))
    return (f"train benchmark on {r['device']}{ddp}\n"
            f"  width {r['width']:g}, {r['size']}x{r['size']}, batch {r['batch']}, "
            f"precision {_precision(r)}, torch.compile {r['compile']}"
            f"{', CUDA graph' if step_of(r)[2] else ''}\n"
            + ("  the nearest-bin search's flag read every step\n" if step_of(r)[1] else "") +
            f"  {r['images_per_s']:.1f} images/s ({_timing(r)})\n"
            f"  ceiling {r['ceiling_images_per_s']:.1f} images/s: measured matmul "
            f"{r['matmul_tflops']:.2f} TFLOP/s\n"
            f"    / {r['gflop_per_image']:.3g} GFLOP per trained image\n"
            f"  -> {100 * r['fraction_of_ceiling']:.1f}% of the ceiling")


def add_bench_command(sub) -> None:
    """Register ``colorlab bench`` on the sub-command parser of :mod:`colorlab.cli` (the one
    argument parser of the command line)."""
    parser = sub.add_parser("bench", help="benchmarks: core (CPU ratios), train (images/s)",
                            description="core: colorlab's rgb_to_lab and soft_encode against "
                            "scikit-image and SciPy on the CPU (ratios > 1: colorlab is faster). "
                            "train: training images/s of the real trainer against the device's "
                            "ceiling (its measured matmul rate over the FLOPs of one image).")
    parser.add_argument("what", choices=["core", "train"], help="which benchmark")
    parser.add_argument("--batch", type=positive_int, default=None, help="images per batch")
    parser.add_argument("--size", type=positive_int, default=176, help="image side in pixels")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="core: timed runs; train: timed windows (the median is reported)")
    parser.add_argument("--steps", type=positive_int, default=20,
                        help="train: steps per timed window")
    parser.add_argument("--width", type=float, default=1.0, help="train: network width")
    parser.add_argument("--device", default=None, help="train: cuda or cpu (default: best)")
    parser.add_argument("--no-compile", action="store_true", help="train: skip torch.compile")
    parser.add_argument("--sync-search", action="store_true",
                        help="train: read the nearest-bin search's exactness flag back at every "
                        "step, as colorlab did before (to compare)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="train: record the step once as a CUDA graph and replay it")
    parser.add_argument("--processes", type=positive_int, default=1,
                        help="train: models trained at once, one process each (summed rate)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the result as JSON to FILE")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json FILE")
    add_precision_option(parser)
    parser.set_defaults(run=_run)


def _run(args) -> int:
    if args.json:  # before the benchmark runs, not after
        check_output_file(args.json, args.overwrite, "--json")
    if args.what == "core":
        r = bench_core(batch=args.batch or 256, size=args.size, repeats=args.repeats)
        print(f"core benchmark on {r['threads']} CPU threads, float32, batch {r['batch']}")
        print(f"rgb_to_lab  {r['batch']}x{r['size']}x{r['size']}: colorlab {r['rgb_to_lab_s']:.3f} s, "
              f"skimage {r['skimage_rgb2lab_s']:.3f} s -> {r['rgb_to_lab_speedup']:.2f}x faster")
        s = r["size"] // 4
        print(f"soft_encode {r['batch']}x{s}x{s} (k=5): colorlab {r['soft_encode_s']:.3f} s, "
              f"cKDTree+weights {r['ckdtree_s']:.3f} s -> {r['soft_encode_speedup']:.2f}x faster")
        if args.json:
            atomic_write_text(json.dumps(r, indent=1), args.json)
        return 0
    ctx = setup(args.device)  # under torchrun: every rank trains its shard with DDP
    result = bench_train(batch=args.batch, size=args.size, steps=args.steps, width=args.width,
                         device=args.device, compile=not args.no_compile, repeats=args.repeats,
                         precision=args.precision, processes=args.processes,
                         sync_search=args.sync_search, cuda_graphs=args.cuda_graphs)
    shutdown()
    if ctx.main:
        print(format_train_bench(result))
        if args.cuda_graphs and not result["cuda_graph"]:
            print(f"  {NOT_RECORDED}")
        if args.json:
            atomic_write_text(json.dumps(result, indent=1), args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m colorlab.bench ARGS`` is ``colorlab bench ARGS``."""
    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
