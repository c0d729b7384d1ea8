"""What a reproduction costs on another GPU, from its FLOP count (``book/07_training.ipynb``).

The work of a run is counted, not timed: an image trained costs :math:`3F` (forward, and two
matmuls per layer backward) and a validation image :math:`F`, where :math:`F` is the forward FLOPs
of the network at the run's size (:func:`colorlab.train_bench.forward_flops`). A GPU doing
:math:`R` FLOP/s at a fraction :math:`\\eta` of that rate needs

.. math:: t = \\frac{\\sum_\\text{runs} \\text{epochs}\\,(3F\\,N_\\text{train} + F\\,N_\\text{val})}{\\eta R}.

:math:`\\eta` is taken from a measured run (the recorded one): the share of its device's
measured matmul rate that its training steps reached. The result is an estimate until someone
times the run on that GPU.
"""
from __future__ import annotations

__all__ = ["T4", "run_flops", "achieved_fraction", "estimate_seconds"]

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
    from .models import ColorizationNet
    from .train_bench import forward_flops

    prof = provenance["profile"]
    flops = {}
    for run, record in provenance["runs"].items():
        config = record.get("config", {})
        head = "regression" if run.endswith("/l2") else "classification"
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
