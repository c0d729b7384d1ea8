r"""How fast training can go, counted rather than timed (``book/07_training.ipynb``): the FLOPs
of the network, the device's matmul ceiling, what a reproduction costs on another GPU, and what
several GPUs add.

**FLOPs and the ceiling.** :func:`forward_flops` sums the convolutions' ``2 x`` multiply-adds
over :func:`colorlab.models.layer_table`; an image trained costs :math:`3F` (forward, and two
matmuls per layer backward), a validation image :math:`F`. :func:`matmul_ceiling` measures the
device's dense matmul rate in the run's precision.

**A reproduction on another GPU.** A GPU doing :math:`R` FLOP/s at a fraction :math:`\eta` of that
rate needs

.. math:: t = \frac{\sum_\text{runs} \text{epochs}\,(3F\,N_\text{train} + F\,N_\text{val})}{\eta R}.

:math:`\eta` is taken from a measured run (the recorded one): the share of its device's measured
matmul rate that its training steps reached. The result is an estimate until someone times the
run on that GPU.

**Several GPUs** (the "Scaling up" section): how much device memory each rank's shard of uint8
images takes, and the throughput per GPU to expect from a measured single-GPU figure when DDP
all-reduces the gradients.

**Recorded benchmarks** (:func:`colorlab.bench.bench_train` records): :func:`throughput_table`
shows them, :func:`throughput_ratios` compares the training steps measured at the same size and
process count (:func:`step_of`: compiled or not, whether the step read the nearest-bin search's
exactness flag back every time, as colorlab trained before the flag stayed on the device, and
whether it was replayed from a CUDA graph, :mod:`colorlab.step_graph`).
"""
from __future__ import annotations

import time

import torch

from .config import TrainConfig, matmul_dtype
from .models import ColorizationNet, layer_table

__all__ = ["forward_flops", "matmul_ceiling", "T4", "run_flops", "achieved_fraction",
           "estimate_seconds", "IMAGENET_TRAIN_IMAGES", "shard_bytes", "gradient_bytes",
           "allreduce_seconds", "expected_throughput", "step_of", "throughput_table",
           "throughput_ratios"]


def forward_flops(model: torch.nn.Module, size: int) -> float:
    """FLOPs (2 x multiply-adds) of the convolutions of one forward pass at ``size x size``,
    summed over :func:`colorlab.models.layer_table`.

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


#: NVIDIA T4 (Colab's free GPU, compute capability 7.5) datasheet peaks, FLOP/s: float16 on tensor
#: cores (mixed precision), and float32 on the CUDA cores, where bf16 autocast ends up (emulated)
T4 = {"name": "NVIDIA T4", "fp16": 65e12, "fp32": 8.1e12}


def run_flops(provenance: dict, validation: bool = True) -> dict[str, float]:
    """FLOPs of every run of a reproduction's ``provenance.json``: ``{run: FLOPs}`` (without the
    validation passes when ``validation`` is False).

    >>> prov = {"profile": {"size": 88, "width": 1.0}, "datasets": {"celeba": {"split_sizes":
    ...     {"train": 10, "val": 5}}}, "runs": {"celeba/ce": {"epochs": 2}}}
    >>> round(run_flops(prov)["celeba/ce"] / 1e9)  # 2 epochs x (3 x 10 + 5) x 7.61 GFLOP
    533
    """
    prof = provenance["profile"]
    flops = {}
    for run, record in provenance["runs"].items():
        config = record.get("config", {})
        head = TrainConfig(loss=run.split("/")[1]).head  # runs are dataset/loss[/seed<k>]
        f = forward_flops(ColorizationNet(head, width=config.get("width", prof["width"])),
                          config.get("size", prof["size"]))
        sizes = provenance["datasets"][run.split("/")[0]]["split_sizes"]
        val = f * sizes.get("val", 0) if validation else 0.0
        flops[run] = record["epochs"] * (3 * f * sizes["train"] + val)
    return flops


def achieved_fraction(provenance: dict, matmul_tflops: float | None = None) -> float:
    """Share of the recorded device's measured matmul rate (``matmul_tflops``, default the
    provenance's ``bench_train.matmul_tflops``) that the runs' training steps reached together:
    their FLOPs over their seconds (validation is timed apart), times the runs trained at once
    (``provenance["workers"]``, 1 in records made before), over that rate."""
    flops = run_flops(provenance, validation=False)
    seconds = sum(provenance["runs"][run]["train_seconds"] for run in flops)
    rate = (matmul_tflops or provenance["bench_train"]["matmul_tflops"]) * 1e12
    return sum(flops.values()) / seconds * int(provenance.get("workers", 1)) / rate


def estimate_seconds(provenance: dict, rate: float, fraction: float | None = None) -> float:
    """Seconds the reproduction of ``provenance`` takes at ``rate`` FLOP/s and ``fraction`` of it
    (default: :func:`achieved_fraction` of the recorded run).

    >>> prov = {"profile": {"size": 88, "width": 1.0}, "datasets": {"celeba": {"split_sizes":
    ...     {"train": 10, "val": 5}}}, "runs": {"celeba/ce": {"epochs": 2}}}
    >>> round(estimate_seconds(prov, rate=1e12, fraction=0.5), 2)
    1.07
    """
    fraction = achieved_fraction(provenance) if fraction is None else fraction
    return sum(run_flops(provenance).values()) / (fraction * rate)


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


def step_of(record: dict) -> tuple[bool, bool, bool]:
    """``(compiled, reads_flag_every_step, cuda_graph)`` of a :func:`colorlab.bench.bench_train`
    record. A record without ``sync_search`` predates the flag kept on the device: its step read
    it; one without ``cuda_graph`` predates CUDA graphs.

    >>> step_of({"compile": True}), step_of({"compile": False, "sync_search": False})
    ((True, True, False), (False, False, False))
    """
    return (bool(record.get("compile")), bool(record.get("sync_search", True)),
            bool(record.get("cuda_graph")))


def _by_step(records: dict[str, dict]) -> dict[tuple, dict]:
    """One record per ``(size, processes, *step_of)``: where two share one
    (a record made before the flag stayed on the device, and a later ``--sync-search`` one of the
    same step), the later kind, which names its step."""
    found: dict[tuple, dict] = {}
    for _, r in sorted(records.items()):
        if "processes" not in r:
            continue
        key = (r["size"], r["processes"], *step_of(r))
        if key not in found or ("sync_search" in r and "sync_search" not in found[key]):
            found[key] = r
    return found


def _step_marks(record: dict) -> str:
    compiled, reads, graph = step_of(record)
    return ((", compiled" if compiled else "") + (", CUDA graph" if graph else "")
            + (", per-step read" if reads else ""))


def throughput_table(records: dict[str, dict]) -> str:
    """A Markdown table of benchmark records (size, processes, images/s, share of the ceiling),
    by size, step and processes, one row per step measured; a step is marked in its processes
    cell (four columns fit a phone), and a line below says what a mark means.

    >>> r = {"size": 88, "processes": 1, "compile": False, "sync_search": False,
    ...      "images_per_s": 5000.0, "fraction_of_ceiling": 0.15}
    >>> print(throughput_table({"88-p1": r}))
    | size | processes | images/s | share of the ceiling |
    | ---: | ---: | ---: | ---: |
    | 88 | 1 | 5,000 | 15.0 % |
    """
    rows = sorted(_by_step(records).values(),
                  key=lambda r: (r["size"], step_of(r)[2], step_of(r)[0], not step_of(r)[1],
                                 r["processes"]))
    lines = ["| size | processes | images/s | share of the ceiling |",
             "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['size']} | {r['processes']}{_step_marks(r)} | {r['images_per_s']:,.0f} | "
              f"{100 * r['fraction_of_ceiling']:.1f} % |" for r in rows]
    if any(step_of(r)[1] for r in rows):
        lines.append("\n*per-step read*: the step read the nearest-bin search's exactness flag "
                     "back from the GPU at every step, as colorlab trained before the flag was "
                     "kept on the device.")
    return "\n".join(lines)


def throughput_ratios(records: dict[str, dict]) -> list[dict]:
    """Each pair of records at the same size and process count that differ in one thing: the
    compiled step against the eager one (``"what": "compile"``), the step that keeps the
    search's flag on the device against the one that reads it every time (``"what": "flag
    kept"``), and the step replayed from a CUDA graph against the one launched kernel by kernel
    (``"what": "CUDA graph"``), all else the same. Each item: ``what``, ``size``, ``processes``,
    ``ratio`` (new rate / old rate), ``new`` and ``old`` (the records).

    >>> old = {"size": 88, "processes": 1, "compile": False, "images_per_s": 100.0}
    >>> new = {**old, "sync_search": False, "images_per_s": 130.0}
    >>> [(c["what"], c["ratio"]) for c in throughput_ratios({"a": old, "b": new})]
    [('flag kept', 1.3)]
    """
    by_step = _by_step(records)
    pairs = []
    for (size, processes, compiled, reads, graph), r in sorted(by_step.items()):
        changes = []
        if compiled:
            changes.append(("compile", (size, processes, False, reads, graph)))
        if not reads:
            changes.append(("flag kept", (size, processes, compiled, True, graph)))
        if graph:
            changes.append(("CUDA graph", (size, processes, compiled, reads, False)))
        for what, key in changes:
            if key in by_step:
                pairs.append({"what": what, "size": size, "processes": processes,
                              "ratio": r["images_per_s"] / by_step[key]["images_per_s"],
                              "new": r, "old": by_step[key]})
    return pairs
