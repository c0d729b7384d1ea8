"""Arithmetic of training on several GPUs (the "Scaling up" section of ``book/07_training.ipynb``):
how much device memory each rank's shard of uint8 images takes, and the throughput per GPU to
expect from a measured single-GPU figure when DDP all-reduces the gradients.
"""
from __future__ import annotations

import torch

__all__ = ["IMAGENET_TRAIN_IMAGES", "shard_bytes", "gradient_bytes", "allreduce_seconds",
           "expected_throughput"]

#: images in ImageNet's (ILSVRC-2012) training set, which Zhang et al. trained on
IMAGENET_TRAIN_IMAGES = 1_281_167


def shard_bytes(n_images: int, size: int, world_size: int = 1) -> int:
    """Device bytes of one rank's shard: ``(n_images // world_size) * 3 * size**2`` (uint8 RGB,
    see :func:`colorlab.distributed.shard`).

    >>> shard_bytes(1000, 88, 2)   # 500 images of 88x88x3 bytes
    11616000
    """
    if min(n_images, size, world_size) < 1:
        raise ValueError(f"n_images, size and world_size must be >= 1, got {n_images}, {size}, "
                         f"{world_size}")
    return n_images // world_size * 3 * size * size


def gradient_bytes(model: torch.nn.Module) -> int:
    """Bytes that DDP all-reduces per step: every trainable parameter's float32 gradient
    (bf16 autocast computes in bf16 but keeps float32 parameters and gradients).

    >>> gradient_bytes(torch.nn.Linear(10, 2))   # (20 weights + 2 biases) x 4 bytes
    88
    """
    return sum(4 * p.numel() for p in model.parameters() if p.requires_grad)


def allreduce_seconds(nbytes: float, world_size: int, bus_bytes_per_s: float) -> float:
    """Time of a ring all-reduce of ``nbytes``: each GPU sends and receives
    ``2 (W - 1) / W * nbytes`` at ``bus_bytes_per_s`` (NCCL's "bus bandwidth").

    >>> allreduce_seconds(1e9, 2, 1e10)
    0.1
    """
    return 2 * (world_size - 1) / world_size * nbytes / bus_bytes_per_s


def expected_throughput(images_per_s: float, batch: int, grad_bytes: float, world_size: int,
                        bus_bytes_per_s: float) -> dict:
    """Images/s per GPU to expect with DDP from the single-GPU rate ``images_per_s`` at per-rank
    ``batch``: one step takes ``t = batch / images_per_s`` plus the all-reduce ``a``. DDP overlaps
    the all-reduce with the backward pass, so a step takes between ``max(t, a)`` (full overlap:
    the ``best`` rate) and ``t + a`` (none: ``worst``). A first-order model: it leaves out
    latency per bucket and contention, and the bandwidth is an input, not a measurement.

    >>> r = expected_throughput(1000.0, 100, 1e9, 2, 1e11)   # t = 0.1 s, a = 0.01 s
    >>> round(r["worst"], 1), r["best"], round(r["node_worst"], 1)
    (909.1, 1000.0, 1818.2)
    """
    step = batch / images_per_s
    comm = allreduce_seconds(grad_bytes, world_size, bus_bytes_per_s)
    worst, best = batch / (step + comm), batch / max(step, comm)
    return {"world_size": world_size, "step_s": step, "allreduce_s": comm, "worst": worst,
            "best": best, "node_worst": world_size * worst, "node_best": world_size * best,
            "effective_batch": world_size * batch}
