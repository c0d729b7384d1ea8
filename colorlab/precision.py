"""Numeric precision per device: which autocast dtype a run uses, and its gradient scaler
(``book/07_training.ipynb``, "Precision").

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

import torch

__all__ = ["PRECISIONS", "resolve_precision", "autocast", "grad_scaler", "autocast_dtype",
           "matmul_dtype"]

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


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
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
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


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision (a no-op context for ``"fp32"``).

    >>> with autocast("cpu", "bf16"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    device = torch.device(device)
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def grad_scaler(device: str | torch.device, precision: str) -> torch.amp.GradScaler:
    """A :class:`torch.amp.GradScaler`, enabled for ``"fp16"`` only (bf16 has float32's exponent
    range and needs no scaling).

    >>> grad_scaler("cpu", "fp16").is_enabled(), grad_scaler("cpu", "bf16").is_enabled()
    (True, False)
    """
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")
