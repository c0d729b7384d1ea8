"""Training configuration and model loading (used by :mod:`colorlab.train`, derived in
``book/07_training.ipynb``)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .models import ColorizationNet
from .precision import PRECISIONS

__all__ = ["TrainConfig", "build_model", "load_model", "default_device", "device_name", "LOSSES"]

LOSSES = ("l2", "ce", "rebal")


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None``: CUDA when available, else CPU.

    >>> default_device("cpu")
    device(type='cpu')
    """
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    precision: str = "auto"  # auto, bf16, fp16 or fp32 (colorlab.precision); amp=False: fp32

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "checkpoint_every", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8 (the network's stride), got {self.size}")
        for name in ("lr", "width", "sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0 <= self.lam <= 1 or self.weight_decay < 0:
            raise ValueError("lam must be in [0, 1] and weight_decay >= 0")

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
    ck = load_checkpoint(path, map_location)
    try:
        config = TrainConfig(**ck["config"])
    except TypeError as err:
        raise CheckpointError(f"{path}: its config does not match this colorlab ({err})") from err
    if expect_head is not None and config.head != expect_head:
        raise CheckpointError(f"{path} holds a {config.head} model (loss {config.loss!r}), "
                              f"not a {expect_head} one")
    model = build_model(config)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit a {config.head} network of width "
                              f"{config.width} ({str(err).splitlines()[0]})") from err
    return model.to(map_location).eval(), config
