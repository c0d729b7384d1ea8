"""Input checks shared by every public function: one clear message per kind of mistake.

Each helper raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a wrong shape
or value, and always names the argument and says what to do instead.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch

_VALUE_CHECKS = contextvars.ContextVar("colorlab_value_checks", default=True)


@contextlib.contextmanager
def trusted_values() -> Iterator[None]:
    """Skip the NaN/inf checks of :func:`check_finite` inside the block.

    Such a check reads a value back from the tensor's device, which on a GPU waits for every
    queued kernel: the trainer's step would stall several times. The trainer's inputs are uint8
    images (finite by construction) and it checks its loss once per epoch instead. Type, dtype
    and shape checks still run.

    >>> with trusted_values():
    ...     check_finite(torch.tensor([float("nan")]), "x")  # not raised inside the block
    """
    token = _VALUE_CHECKS.set(False)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; "
                        f"convert with torch.as_tensor(...)")
    return x


def check_float(x: torch.Tensor, name: str, hint: str = "") -> None:
    """Raise ``TypeError`` unless ``x`` has a floating-point dtype."""
    if not x.is_floating_point():
        extra = f" {hint}" if hint else " Convert it with .float()."
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}.{extra}")


def check_shape(x: torch.Tensor, name: str, *, ndim: int | None = None, min_ndim: int | None = None,
                channels: int | None = None, channel_dim: int = -3, layout: str = "") -> None:
    """Check rank and channel count; ``layout`` (e.g. ``"(B, 2, H, W)"``) is quoted in errors."""
    want = f" {layout}" if layout else ""
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions{want}, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions{want}, "
                         f"got shape {tuple(x.shape)}")
    if channels is not None and x.shape[channel_dim] != channels:
        raise ValueError(f"{name} must have {channels} channels in dimension {channel_dim}{want}, "
                         f"got shape {tuple(x.shape)}")


def check_nonempty(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` for a tensor with zero elements."""
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one element")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or +-inf (not inside :func:`trusted_values`)."""
    if not _VALUE_CHECKS.get():
        return
    # one cheap reduction first: a finite sum proves every element finite (NaN and inf propagate)
    if x.is_floating_point() and bool(torch.isfinite(x.sum())):
        return
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values; clean the input first "
                         f"(e.g. torch.nan_to_num)")


def check_weights(weights: object, n: int, name: str = "weights") -> torch.Tensor:
    """Check per-bin weights: a float tensor ``(n,)``, finite and >= 0 (values not inside
    :func:`trusted_values`)."""
    check_tensor(weights, name)
    check_float(weights, name)
    if weights.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per bin, got "
                         f"{tuple(weights.shape)}")
    check_finite(weights, name)
    if _VALUE_CHECKS.get() and bool((weights < 0).any()):
        raise ValueError(f"{name} must be >= 0 (rebalancing weights, "
                         f"colorlab.prior.rebalance_weights), got a negative value")
    return weights


def check_positive(value: float, name: str) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_unit_interval(value: float, name: str) -> float:
    """Raise ``ValueError`` unless ``0 <= value <= 1``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_bins(bins: torch.Tensor, name: str = "bins") -> None:
    """Check a bin-centre table: float tensor of shape ``(Q, 2)`` with ``Q >= 1``, finite."""
    check_tensor(bins, name)
    check_float(bins, name)
    if bins.ndim != 2 or bins.shape[1] != 2 or bins.shape[0] < 1:
        raise ValueError(f"{name} must have shape (Q, 2) with Q >= 1, got {tuple(bins.shape)}")
    check_finite(bins, name)
