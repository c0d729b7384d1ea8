"""A training run's configuration and where it runs: :class:`TrainConfig`, the model it
describes (:func:`build_model`, :func:`load_model`), the device and the numeric precision
(used by :mod:`colorlab.train`, derived in ``book/07_training.ipynb``, "Precision").

``precision="auto"`` resolves to

* ``"bf16"`` on CUDA devices with native bfloat16 tensor cores, i.e. compute capability >= 8.0
  (A100, H100, RTX 30xx and newer);
* ``"fp16"`` on older CUDA devices (T4 = 7.5, V100 = 7.0): float16 autocast with a
  :class:`torch.amp.GradScaler`, since float16 has 5 exponent bits and small gradients underflow
  unless the loss is multiplied by a scale :math:`s` before the backward pass (the gradients are
  divided by :math:`s` again before the update, and a step whose gradients overflow to inf/NaN is
  skipped while :math:`s` is halved);
* ``"fp32"`` on the CPU (no autocast).

The decision is made from the compute capability, not from ``torch.cuda.is_bf16_supported()``:
that function also counts bf16 *emulation* and answers True on a T4, where bf16 autocast runs
without tensor cores, several times slower than fp16.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from ._validation import check_device, check_positive, check_unit_interval
from .checkpoint import CheckpointError, load_checkpoint
from .models import MAX_WIDTH, ColorizationNet
from .report import RUNS

__all__ = ["TrainConfig", "build_model", "load_model", "default_device", "device_name", "LOSSES",
           "PRECISIONS", "resolve_precision", "autocast", "grad_scaler", "autocast_dtype",
           "matmul_dtype", "cudnn_autotuning"]


LOSSES = tuple(RUNS)  # "l2", "ce", "rebal": the runs of Table 1
#: the values of ``precision``: "auto" picks by device (see :func:`resolve_precision`)
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``, checked to exist; ``None``: CUDA when available, else CPU.

    A device this machine does not have is a ``ValueError`` that says which devices it has (not a
    failure deep inside a checkpoint load or the first step).

    >>> default_device("cpu")
    device(type='cpu')
    >>> default_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device 'gpu' is not a torch device name; use 'cpu', 'cuda' or 'cuda:<index>'
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = check_device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: this machine has no CUDA GPU that torch can "
                             f"use; use --device cpu (or, in Colab, Runtime > Change runtime type "
                             f"> GPU)")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available here; use --device cpu")
    return dev


def device_name(device: torch.device) -> str:
    """The card's name on CUDA, else ``"CPU (<n> threads)"``: what recorded results name.

    >>> device_name(torch.device("cpu")).startswith("CPU (")
    True
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in every checkpoint).

    ``loss``: ``"l2"`` (regression head, Eq. 1), ``"ce"`` (classification, Eq. 2 without
    rebalancing) or ``"rebal"`` (Eq. 2 with class-rebalancing weights). The report trained with
    Adam, lr 3e-5, weight decay 1e-3, batch 8 for 100 epochs; on a GPU a batch of 8 wastes the
    device, so larger batches use ``lr = 3e-5 * sqrt(batch / 8)`` (square-root scaling for Adam),
    which :meth:`scaled_lr` computes and the reproduction records.
    """

    loss: str = "ce"
    width: float = 1.0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 3e-5
    weight_decay: float = 1e-3
    seed: int = 0
    k: int = 5
    sigma: float = 5.0
    lam: float = 0.5
    checkpoint_every: int = 1
    compile: bool = False
    amp: bool = True
    size: int = 88
    precision: str = "auto"  # auto, bf16, fp16 or fp32 (resolve_precision); amp=False: fp32

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "checkpoint_every", "size", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed < 2 ** 62:
            raise ValueError(f"seed must be an integer in [0, 2**62), got {self.seed!r}")
        if self.k > 313:
            raise ValueError(f"k must be at most 313 (the number of ab bins), got {self.k}")
        if self.size == 8 and self.batch_size == 1:
            raise ValueError("size 8 with batch_size 1: the network's deepest feature map is 1x1, "
                             "and BatchNorm needs more than one value per channel; use "
                             "batch_size >= 2 or size >= 16")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8 (the network's stride), got {self.size}")
        for name in ("lr", "width", "sigma"):
            check_positive(getattr(self, name), name)
        if self.width > MAX_WIDTH:
            raise ValueError(f"width must be at most {MAX_WIDTH}, got {self.width!r}")
        _check_precision(self.precision)
        check_unit_interval(self.lam, "lam")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) \
                or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        for name in ("compile", "amp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def head(self) -> str:
        return "regression" if self.loss == "l2" else "classification"

    @staticmethod
    def scaled_lr(batch_size: int, base_lr: float = 3e-5, base_batch: int = 8) -> float:
        """``base_lr * sqrt(batch_size / base_batch)``.

        >>> round(TrainConfig.scaled_lr(128), 8)
        0.00012
        """
        return base_lr * math.sqrt(batch_size / base_batch)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_model(config: TrainConfig) -> ColorizationNet:
    """The network for ``config`` (head from the loss)."""
    return ColorizationNet(config.head, width=config.width)


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               expect_head: str | None = None) -> tuple[ColorizationNet, TrainConfig]:
    """Load ``model.pt`` or ``checkpoint.pt`` of a run: returns the network (eval mode) and config.

    ``expect_head`` (``"classification"``/``"regression"``) turns a head mismatch into a clear error.
    """
    device = default_device(map_location)  # an absent device is named as such, up front
    ck = load_checkpoint(path, "cpu")
    try:
        config = TrainConfig(**ck["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its config does not match this colorlab ({err})") from err
    if expect_head is not None and config.head != expect_head:
        raise CheckpointError(f"{path} holds a {config.head} model (loss {config.loss!r}), "
                              f"not a {expect_head} one")
    model = build_model(config)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, KeyError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise CheckpointError(f"{path}: weights do not fit a {config.head} network of width "
                              f"{config.width} ({lines[0][:200]})") from err
    return model.to(device).eval(), config


def resolve_precision(precision: str, device: str | torch.device,
                      capability: tuple[int, int] | None = None) -> str:
    """The precision a run on ``device`` uses: ``precision`` itself unless it is ``"auto"``.

    ``capability`` (major, minor) overrides the CUDA device's compute capability (for tests).

    >>> resolve_precision("auto", "cpu")
    'fp32'
    >>> resolve_precision("auto", "cuda", capability=(7, 5))   # T4
    'fp16'
    >>> resolve_precision("auto", "cuda", capability=(9, 0))   # H100
    'bf16'
    >>> resolve_precision("fp16", "cpu")                       # explicit: kept (for testing)
    'fp16'
    """
    _check_precision(precision)
    device = torch.device(device)
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    major, _ = capability if capability is not None else torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a resolved precision.

    >>> autocast_dtype("fp16")
    torch.float16
    """
    if precision not in _DTYPES:
        raise ValueError(f"resolve 'auto' first; got {precision!r}")
    return _DTYPES[precision]


def matmul_dtype(device: str | torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype of the dense matmul that measures a device's ceiling: the training precision.

    >>> matmul_dtype("cpu")
    torch.float32
    """
    return autocast_dtype(resolve_precision(precision, device))


def autocast(device: str | torch.device, precision: str, cache: bool = True
             ) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision (a no-op context for ``"fp32"``).
    ``cache=False`` turns off autocast's cache of cast weights, as a step recorded as a CUDA
    graph needs (:mod:`colorlab.step_graph`).

    >>> with autocast("cpu", "bf16"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    device = torch.device(device)
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32,
                          cache_enabled=cache)


def grad_scaler(device: str | torch.device, precision: str) -> torch.amp.GradScaler:
    """A :class:`torch.amp.GradScaler`, enabled for ``"fp16"`` only (bf16 has float32's exponent
    range and needs no scaling).

    >>> grad_scaler("cpu", "fp16").is_enabled(), grad_scaler("cpu", "bf16").is_enabled()
    (True, False)
    """
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")


@contextlib.contextmanager
def cudnn_autotuning(enabled: bool) -> Iterator[None]:
    """Let cuDNN time its convolution algorithms once per input shape (the trainer's shapes are
    fixed) and keep the fastest; the global setting is restored afterwards.

    >>> with cudnn_autotuning(False):
    ...     pass
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
