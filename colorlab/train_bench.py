"""``colorlab bench train``: training throughput of the real trainer against the device's ceiling.

The ceiling is the device's measured dense matmul rate in the run's precision (bf16 on Ampere and
newer GPUs, fp16 on older ones, float32 on CPU: :mod:`colorlab.precision`) divided by
the FLOPs of one trained image: 3x the forward FLOPs (forward + two backward matmuls), counted
from the network's convolutions (30.45 GFLOP forward at 176x176, width 1, so 91.4 GFLOP trained).
"""
from __future__ import annotations

import statistics
import tempfile
import time

import torch

from .data import ColorizationDataset
from .models import ColorizationNet
from ._validation import check_positive_int
from .precision import matmul_dtype, resolve_precision
from .run_pool import mps_active, run_jobs, wait_for_others
from .summary import layer_table
from .train import TrainConfig, Trainer
from .train_config import default_device, device_name

__all__ = ["forward_flops", "matmul_ceiling", "bench_train", "format_train_bench"]


def forward_flops(model: torch.nn.Module, size: int) -> float:
    """FLOPs (2 x multiply-adds) of the convolutions of one forward pass at ``size x size``,
    summed over :func:`colorlab.summary.layer_table`.

    >>> round(forward_flops(ColorizationNet(), 176) / 1e9, 2)
    30.45
    """
    return sum(row["flops"] for row in layer_table(model, size))


def matmul_ceiling(device: torch.device, n: int | None = None, repeats: int = 10,
                   precision: str = "auto") -> float:
    """Measured dense matmul FLOP/s in ``precision`` (``"auto"``: bf16 on CUDA capability >= 8,
    fp16 on older CUDA, float32 on CPU)."""
    cuda = device.type == "cuda"
    n = n or (8192 if cuda else 1024)
    dtype = matmul_dtype(device, precision)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2.0 * n ** 3 * repeats / (time.perf_counter() - start)


def _windows(kwargs: dict) -> dict:
    """Images/s of each timed window of one benchmark process (a :func:`run_pool.run_jobs` job)."""
    dev, batch, size = kwargs["device"], kwargs["batch"], kwargs["size"]
    config = TrainConfig(loss=kwargs["loss"], width=kwargs["width"], batch_size=batch, size=size,
                         compile=kwargs["compile"], lr=TrainConfig.scaled_lr(batch),
                         precision=kwargs["precision"])
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch * 2, 3, size, size), generator=gen, dtype=torch.uint8)
    data = ColorizationDataset(images, torch.full((len(images),), -1),
                               [f"{i}" for i in range(len(images))], [], "synthetic", size,
                               source="synthetic")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, data, None, tmp, device=dev, progress=False)
        windows = trainer.benchmark(steps=kwargs["steps"], warmup=kwargs["warmup"],
                                    repeats=kwargs["repeats"], on_ready=wait_for_others)
    return {"windows": windows, "compiled": trainer.compiled,
            "world_size": trainer.dist.world_size}


def bench_train(batch: int | None = None, size: int = 176, steps: int = 20, width: float = 1.0,
                device: str | torch.device | None = None, compile: bool = True, warmup: int = 5,
                loss: str = "ce", repeats: int = 5, precision: str = "auto",
                processes: int = 1) -> dict:
    """Measure training images/s on random images (the data values do not change the cost).

    ``images_per_s`` is the median over ``repeats`` timed windows of ``steps`` steps (each
    window's rate in ``images_per_s_windows``): on an H100 single 20-step windows of the same
    configuration ranged from 3,407 to 3,909 images/s.

    ``processes > 1`` trains that many independent models at once, each in its own process on the
    same device (:mod:`colorlab.run_pool`: how ``colorlab reproduce`` trains its runs): the
    processes start their timed windows together, each window's rate is the sum over the
    processes, and ``images_per_s`` is the median of those sums.

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
           "warmup": max(warmup, 3) if compile and cuda else warmup, "repeats": repeats}
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
            "steps": steps, "gflop_per_image": flops / 1e9, "matmul_tflops": ceiling / 1e12,
            "ceiling_images_per_s": ceiling / flops, "fraction_of_ceiling": images_per_s * flops
            / ceiling}


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
            f"precision {_precision(r)}, torch.compile {r['compile']}\n"
            f"  {r['images_per_s']:.1f} images/s ({_timing(r)})\n"
            f"  ceiling {r['ceiling_images_per_s']:.1f} images/s: measured matmul "
            f"{r['matmul_tflops']:.2f} TFLOP/s\n"
            f"    / {r['gflop_per_image']:.3g} GFLOP per trained image\n"
            f"  -> {100 * r['fraction_of_ceiling']:.1f}% of the ceiling")
