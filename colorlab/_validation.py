"""Input checks shared by every public function: one clear message per kind of mistake.

Each helper raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a wrong shape
or value, and always names the argument and says what to do instead.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import numbers
from collections.abc import Iterator

import torch

_VALUE_CHECKS = contextvars.ContextVar("colorlab_value_checks", default=True)


def error_summary(err: BaseException, limit: int = 300) -> str:
    """``"TypeName: first line of the message"`` (at most ``limit`` characters of the line), for
    a warning that says why an optional speed-up was dropped.

    >>> error_summary(RuntimeError("no C compiler" + chr(10) + "more detail"))
    'RuntimeError: no C compiler'
    """
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:limit]}"


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
    """Check per-bin weights: a float tensor ``(n,)``, finite, >= 0 and not all zero (values not
    inside :func:`trusted_values`)."""
    check_tensor(weights, name)
    check_float(weights, name)
    if weights.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per bin, got "
                         f"{tuple(weights.shape)}")
    check_finite(weights, name)
    check_nonnegative(weights, name, "rebalancing weights, colorlab.prior.rebalance_weights")
    if _VALUE_CHECKS.get() and not bool((weights > 0).any()):
        raise ValueError(f"{name} are all zero: every pixel's loss would be multiplied by 0 and "
                         f"nothing would train (colorlab.prior.rebalance_weights gives weights "
                         f"> 0)")
    return weights


def check_nonnegative(x: torch.Tensor, name: str, hint: str) -> None:
    """Raise ``ValueError`` if ``x`` holds a negative value (not inside :func:`trusted_values`)."""
    if _VALUE_CHECKS.get() and bool((x < 0).any()):
        raise ValueError(f"{name} must be >= 0 ({hint}), got a negative value")


def _real(value: object, name: str, want: str) -> float:
    """``value`` as a float if it is a real number (not a bool), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} must be {want}, got an integer of {len(str(value))} "
                         f"digits") from None


def check_positive(value: float, name: str) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0.

    >>> check_positive(10 ** 400, "T")
    Traceback (most recent call last):
    ...
    ValueError: T must be a finite number > 0, got an integer of 401 digits
    """
    number = _real(value, name, "a finite number > 0")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_positive_int(value: object, name: str, maximum: int | None = None) -> int:
    """Raise ``ValueError`` unless ``value`` is an integer >= 1 (and <= ``maximum``).

    >>> check_positive_int(0, "batch_size")
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer, got 0
    """
    limit = 2 ** 31 - 1 if maximum is None else maximum
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > limit:
        shown = repr(value) if len(str(value)) < 20 else f"an integer of {len(str(value))} digits"
        raise ValueError(f"{name} must be a positive integer <= {limit}, got {shown}")
    return int(value)


def check_finite_result(result: torch.Tensor, name: str, hint: str) -> torch.Tensor:
    """Raise ``ValueError`` naming the input ``name`` if ``result`` overflowed to NaN or inf
    (inputs far outside their range; not checked inside :func:`trusted_values`)."""
    if _VALUE_CHECKS.get() and not bool(torch.isfinite(result).all()):
        raise ValueError(f"{name} holds values too large for this computation in "
                         f"{result.dtype} (the result overflows to inf/NaN); {hint}")
    return result


def check_device(device: object, name: str = "device") -> torch.device:
    """``device`` as a ``torch.device`` of a kind colorlab runs on (cpu, cuda, mps)."""
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} {device!r} is not a torch device name; use 'cpu', 'cuda' or "
                         f"'cuda:<index>'")
    return dev


def check_path(path: object, name: str = "path") -> None:
    """Raise ``TypeError`` unless ``path`` is a ``str`` or an ``os.PathLike``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got "
                        f"{type(path).__name__}")


def check_images(images: object, name: str = "images") -> torch.Tensor:
    """Check a batch of 8-bit sRGB images: a uint8 tensor ``(N, 3, H, W)`` with no zero size."""
    check_tensor(images, name)
    if images.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 sRGB images (N, 3, H, W) in 0..255, got dtype "
                        f"{images.dtype}; convert float images in [0, 1] with "
                        f"(x * 255).round().to(torch.uint8)")
    check_shape(images, name, ndim=4, channels=3, channel_dim=1, layout="(N, 3, H, W)")
    check_nonempty(images, name)
    return images


def check_unit_interval(value: float, name: str) -> float:
    """Raise ``ValueError`` unless ``0 <= value <= 1``."""
    number = _real(value, name, "a number in [0, 1]")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return number


def check_bins(bins: torch.Tensor, name: str = "bins") -> None:
    """Check a bin-centre table: float tensor of shape ``(Q, 2)`` with ``Q >= 1``, finite."""
    check_tensor(bins, name)
    check_float(bins, name)
    if bins.ndim != 2 or bins.shape[1] != 2 or bins.shape[0] < 1:
        raise ValueError(f"{name} must have shape (Q, 2) with Q >= 1, got {tuple(bins.shape)}")
    check_finite(bins, name)
