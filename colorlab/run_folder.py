"""What a training run writes into its folder, besides its checkpoint (``book/07_training.ipynb``).

A run folder holds ``checkpoint.pt`` (:mod:`colorlab.run_state`) and :data:`RUN_FILES`:
``config.json``, ``history.json`` (per-epoch losses, Fig. 4), ``model.pt`` (final weights and
config, what ``colorlab colorize`` loads), ``best.pt`` (the weights of the epoch with the lowest
validation loss, in the same format, with its ``epoch``) and ``done.json``. Every file is written
atomically (:mod:`colorlab.checkpoint`), and a folder that holds another run's files is refused
rather than overwritten (:func:`refuse_foreign_files`).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from .config import TrainConfig

__all__ = ["RUN_FILES", "refuse_foreign_files", "BestWeights"]

#: the files a run writes into its folder (besides ``checkpoint.pt``)
RUN_FILES = ("config.json", "history.json", "model.pt", "best.pt", "done.json")


def refuse_foreign_files(run_dir: str | Path, config: TrainConfig) -> None:
    """Raise :class:`~colorlab.checkpoint.CheckpointError` if ``run_dir``, which holds no
    checkpoint, holds files a run writes (:data:`RUN_FILES`) that training would overwrite. Only
    this same configuration's ``config.json`` and ``best.pt`` may be there: a run killed before
    its first checkpoint, or between writing ``best.pt`` and that checkpoint.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as run:
    ...     _ = (Path(run) / "model.pt").write_bytes(b"someone's model")
    ...     refuse_foreign_files(run, TrainConfig())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    colorlab.checkpoint.CheckpointError: run folder ... holds model.pt but no checkpoint.pt of this run, and training would overwrite them; use a new or empty --run-dir
    """
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not (set(found) <= {"config.json", "best.pt"} and _ours(run_dir, config)):
        raise CheckpointError(
            f"run folder {run_dir} holds {', '.join(found)} but no checkpoint.pt of this "
            f"run, and training would overwrite them; use a new or empty --run-dir")


def _ours(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``config.json`` (which must be there) and ``best.pt`` (if there) are this
    configuration's."""
    try:
        if json.loads((run_dir / "config.json").read_text()) != config.to_dict():
            return False
        best = run_dir / "best.pt"
        return not best.exists() or load_checkpoint(best)["config"] == config.to_dict()
    except (OSError, ValueError):  # missing, unreadable, or not a checkpoint (CheckpointError)
        return False


class BestWeights:
    """The weights of the epoch with the lowest validation loss so far (the earliest on ties),
    kept in memory until the next checkpoint writes them as ``best.pt``.

    >>> model = torch.nn.Linear(2, 1)
    >>> best = BestWeights()
    >>> best.update(model, epoch=1, val_loss=0.5, history=[])
    >>> best.update(model, epoch=2, val_loss=0.7, history=[{"val_loss": 0.5}])
    >>> best.epoch, best.saved
    (1, False)
    """

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.val_loss: float | None = None
        self.saved = True  # nothing is waiting to be written
        self._model: dict[str, torch.Tensor] | None = None

    def update(self, model: torch.nn.Module, epoch: int, val_loss: float | None,
               history: list[dict]) -> None:
        """Keep ``model``'s weights if ``val_loss`` is lower than every validation loss in
        ``history``: the epochs before this one, those of a resumed run included (whose best is
        already in ``best.pt``)."""
        earlier = [h["val_loss"] for h in history if h.get("val_loss") is not None]
        if val_loss is None or (earlier and val_loss >= min(earlier)):
            return
        self.epoch, self.val_loss, self.saved = epoch, val_loss, False
        self._model = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def save(self, write: Callable[[dict, Path], None], path: str | Path,
             config: TrainConfig) -> None:
        """Write the kept weights with ``write(record, path)`` (e.g.
        :func:`colorlab.checkpoint.atomic_save`) in ``model.pt``'s format, with their ``epoch``
        and ``val_loss``, unless they were written already."""
        if self.saved:
            return
        write({"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "model": self._model,
               "epoch": self.epoch, "val_loss": self.val_loss}, Path(path))
        self.saved = True
