"""A training run's resumable state, and its checkpoint (``book/07_training.ipynb``).

Everything that decides what the next step computes lives in a :class:`RunState`: the model, its
Adam optimizer and scheduler, fp16's gradient scaler, the CPU generator that draws the
augmentation, and torch's own random states (CPU and CUDA, for dropout). :meth:`RunState.checkpoint`
writes all of it into one dict (with every rank's random states under torchrun) and
:meth:`RunState.restore` puts it back, so that a run resumed from its checkpoint ends with the
weights an uninterrupted run ends with (on a CPU, where kernels are deterministic).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.lr_scheduler import LRScheduler

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError
from .config import TrainConfig, build_model, grad_scaler
from .distributed import DistContext

__all__ = ["RunState", "run_scale", "data_fingerprint", "check_resumable"]


def data_fingerprint(dataset) -> str:
    """First 16 hex digits of the sha256 of a data set's file names, image size and fit, and of
    its decoded pixels: what a checkpoint records of the images it was trained on, so that a run
    is never resumed (or reported finished) on other images, even under the same names (0.23 s
    for 4,320 images at 176x176 on a 2-core CPU).

    >>> from colorlab.data import SampleImages
    >>> splits = SampleImages(size=16, n=10).splits()
    >>> data_fingerprint(splits["train"]) == data_fingerprint(splits["val"])
    False
    """
    body = json.dumps({"files": list(dataset.files), "size": dataset.size,
                       "fit": getattr(dataset, "fit", None)})
    digest = hashlib.sha256(body.encode())
    digest.update(dataset.images.detach().cpu().contiguous().numpy())  # the pixels, uint8
    return digest.hexdigest()[:16]


def run_scale(config: TrainConfig, dist: DistContext) -> dict:
    """World size, effective batch (all ranks together) and learning rate of a run: what its
    checkpoints, history and ``model.pt`` record.

    >>> from colorlab.distributed import context
    >>> run_scale(TrainConfig(batch_size=64), context())["effective_batch_size"]
    64
    """
    return {"world_size": dist.world_size, "lr": config.lr,
            "effective_batch_size": config.batch_size * dist.world_size}


def check_resumable(ck: dict, config: TrainConfig, world_size: int, path: str | Path,
                    data: str | None = None) -> None:
    """Raise :class:`~colorlab.checkpoint.CheckpointError` unless the checkpoint ``ck`` (read
    from ``path``) continues this run: resumable (not final weights only), of ``config``, of
    ``world_size`` processes, at an epoch of the run that its history covers, and trained on
    the training set whose :func:`data_fingerprint` is ``data`` (checkpoints from before the
    fingerprint are not checked). What
    :meth:`RunState.restore` checks before it loads anything, and what ``colorlab reproduce``
    checks of every run folder before it starts.

    >>> check_resumable({"config": {}}, TrainConfig(), 1, "model.pt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    colorlab.checkpoint.CheckpointError: model.pt is not a resumable checkpoint: it lacks optimizer, ... (a model.pt or best.pt holds final weights only); use another run folder or delete it
    """
    missing = [k for k in ("optimizer", "scheduler", "epoch", "history", "generator",
                           "torch_rng") if k not in ck]
    if missing:
        final = " (a model.pt or best.pt holds final weights only)" if "optimizer" in missing \
            else ""
        raise CheckpointError(f"{path} is not a resumable checkpoint: it lacks "
                              f"{', '.join(missing)}{final}; use another run folder or "
                              f"delete it")
    if not isinstance(ck.get("config"), dict):
        raise _damaged(path, TypeError("its config is not a mapping"))
    if data is not None and ck.get("data", data) != data:
        raise CheckpointError(f"{path} was trained on other images than this run's "
                              f"training set; use another run folder, or the data set it "
                              f"was trained on")
    saved = {"precision": "auto", **ck["config"]}  # checkpoints from before the setting
    if saved != config.to_dict():
        changed = sorted(k for k in config.to_dict() if saved.get(k) != config.to_dict()[k])
        raise CheckpointError(f"{path} belongs to a run with another config (differs in "
                              f"{', '.join(changed)}); use another run folder or delete it")
    if ck.get("world_size", 1) != world_size:
        raise CheckpointError(f"{path} was trained by {ck.get('world_size', 1)} process(es), "
                              f"this run has {world_size}: resume it with torchrun "
                              f"--nproc_per_node {ck.get('world_size', 1)} (each rank's "
                              f"data shard and random state are in the checkpoint)")
    try:
        epoch, epochs_of_history = int(ck["epoch"]), len(ck["history"])
        if not 0 < epoch <= config.epochs or epochs_of_history != epoch:
            raise ValueError(f"it is at epoch {epoch} with {epochs_of_history} epochs of "
                             f"history, in a run of {config.epochs}")
    except (TypeError, ValueError) as err:
        raise _damaged(path, err) from err


def _damaged(path: str | Path, err: Exception) -> CheckpointError:
    """The one-line error for a checkpoint whose fields do not load, naming the file."""
    return CheckpointError(f"{path} is damaged and cannot be resumed "
                           f"({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                           f"use another run folder or delete it")


@dataclass
class RunState:
    """The model, optimizer, scheduler, augmentation generator and gradient scaler of one run.

    >>> from colorlab.distributed import context
    >>> config = TrainConfig(width=0.0625, size=16)
    >>> state = RunState.fresh(config, torch.device("cpu"), "fp32", context())
    >>> saved = state.checkpoint(config, context(), epoch=2, history=[{"epoch": 1}, {"epoch": 2}])
    >>> again = RunState.fresh(config, torch.device("cpu"), "fp32", context())
    >>> again.restore(saved, config, context(), "run/checkpoint.pt")
    (2, [{'epoch': 1}, {'epoch': 2}])
    >>> torch.equal(again.gen.get_state(), state.gen.get_state())
    True
    """

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: LRScheduler
    gen: torch.Generator  # the augmentation's draws (a CPU generator: the same on any device)
    scaler: torch.amp.GradScaler  # enabled for fp16 only

    @classmethod
    def fresh(cls, config: TrainConfig, device: torch.device, precision: str,
              dist: DistContext) -> RunState:
        """A new run's state, seeded by ``config.seed`` (each rank's generator its own)."""
        torch.manual_seed(config.seed)
        cuda = device.type == "cuda"
        model = build_model(config).to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr,
                               weight_decay=config.weight_decay, fused=cuda)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        gen = torch.Generator().manual_seed(config.seed + 1 + dist.rank * 2 ** 32)
        return cls(model, opt, sched, gen, grad_scaler(device, precision))

    @property
    def _cuda(self) -> bool:
        return next(self.model.parameters()).device.type == "cuda"

    def _rng_states(self) -> dict:
        return {"generator": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self._cuda else []}

    def checkpoint(self, config: TrainConfig, dist: DistContext, epoch: int,
                   history: list, data: str | None = None) -> dict:
        """The checkpoint after ``epoch`` epochs (a collective under torchrun: every rank calls
        it; every rank's random states are kept, rank 0's also at the top); ``data`` is the
        training set's :func:`data_fingerprint`."""
        ranks = dist.gather(self._rng_states())
        return {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "epoch": epoch,
                **({"data": data} if data is not None else {}),
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), **ranks[0], "history": history,
                "scaler": self.scaler.state_dict(), **run_scale(config, dist),
                **({"rank_states": ranks} if dist.active else {})}

    def restore(self, ck: dict, config: TrainConfig, dist: DistContext,
                path: str | Path, data: str | None = None) -> tuple[int, list]:
        """Continue from the checkpoint ``ck`` (read from ``path``, which errors name); returns
        its epoch and history. A checkpoint of another config, world size or training set
        (``data``, its :func:`data_fingerprint`; checkpoints from before the fingerprint are
        not checked), and one that is not resumable, are refused."""
        check_resumable(ck, config, dist.world_size, path, data)
        try:  # a damaged field is one line that names the file, not a trace from deep in torch
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
            rng = ck["rank_states"][dist.rank] if dist.active else ck
            self.gen.set_state(rng["generator"])
            torch.set_rng_state(rng["torch_rng"])
            if self._cuda and rng["cuda_rng"]:
                torch.cuda.set_rng_state_all(rng["cuda_rng"])
            if ck.get("scaler"):
                self.scaler.load_state_dict(ck["scaler"])
            for group in self.opt.param_groups:  # Adam's moments must fit their parameters
                for p in group["params"]:
                    for name, v in self.opt.state.get(p, {}).items():
                        if torch.is_tensor(v) and v.dim() and v.shape != p.shape:
                            raise ValueError(f"the optimizer's {name} has shape "
                                             f"{tuple(v.shape)} for a parameter of shape "
                                             f"{tuple(p.shape)}")
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            raise _damaged(path, err) from err
        return int(ck["epoch"]), list(ck["history"])  # (checked by check_resumable)
