"""One trainer for the report's three models (derived in ``book/07_training.ipynb``).

The whole dataset lives on the training device as uint8; each step augments, converts to Lab and
soft-encodes on that device, in batch, so data loading never starves a GPU. On CUDA the forward
pass runs in autocast (bf16, or fp16 with a gradient scaler on pre-Ampere GPUs:
:mod:`colorlab.config`) with channels_last memory, Adam is fused, and ``torch.compile`` and a
recorded CUDA graph are optional. That step is :class:`colorlab.training_step.TrainingStep`; the
trainer runs the epochs around it.

Checkpoints are atomic and hold everything needed to continue bit-for-bit: model, optimizer,
scheduler, epoch, RNG states, config and history. A run killed at any moment loses only the work
since its last checkpoint; resumed, it ends with the same weights as an uninterrupted run (on CPU,
where kernels are deterministic). Under ``torchrun`` it trains one model on several
devices with DistributedDataParallel, each rank holding its shard (:mod:`colorlab.distributed`).

The run folder holds ``checkpoint.pt`` (the latest state, :mod:`colorlab.run_state`) and the files
of :mod:`colorlab.run_folder`: ``history.json``, ``model.pt``, ``best.pt``, ``done.json``.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ._validation import trusted_values
from .checkpoint import (CHECKPOINT_FORMAT, CheckpointError, atomic_save, atomic_write_text,
                         load_checkpoint, make_folder)
from .config import (TrainConfig, build_model, cudnn_autotuning, default_device, load_model,
                     resolve_precision)
from .data import ColorizationDataset
from .distributed import context, main_only, shard, sharded_chunks
from .folder_lock import FolderLock
from .run_folder import RUN_FILES, BestWeights, refuse_foreign_files
from .run_state import RunState, data_fingerprint, run_scale
from .training_step import TrainingStep, require_weights

__all__ = ["TrainConfig", "Trainer", "build_model", "load_model", "default_device", "RUN_FILES"]

def _no_terminal() -> bool:
    """No progress bar in logs: stderr is no terminal, and this is no notebook (whose bar is a
    widget)."""
    return not sys.stderr.isatty() and "ipykernel" not in sys.modules

# under torchrun only rank 0 writes the run's files (colorlab.distributed)
_save, _write_text = main_only(atomic_save), main_only(atomic_write_text)


class Trainer:
    """Train one model on a :class:`~colorlab.data.ColorizationDataset`.

    Args:
        config: the run's :class:`TrainConfig`.
        train_set, val_set: datasets at ``config.size``.
        run_dir: folder for checkpoints, history and the final model.
        weights: ``(313,)`` rebalancing weights, required for ``loss="rebal"``.
        device: default: CUDA if available.
        progress: show a tqdm bar with images/s.
        callback: ``callback(event, epoch, step)`` called after every step (``"step"``) and
            after every epoch's checkpoint (``"epoch"``); for monitoring and tests.

    >>> import tempfile
    >>> from colorlab.data import SampleImages
    >>> splits = SampleImages(size=16, n=20).splits()
    >>> config = TrainConfig(loss="ce", width=0.0625, epochs=2, batch_size=4, size=16)
    >>> with tempfile.TemporaryDirectory() as run:
    ...     history = Trainer(config, splits["train"], splits["val"], run, progress=False).fit()
    ...     model, saved = load_model(f"{run}/model.pt")
    >>> len(history), saved == config
    (2, True)
    """

    def __init__(self, config: TrainConfig, train_set: ColorizationDataset,
                 val_set: ColorizationDataset | None, run_dir: str | Path,
                 weights: torch.Tensor | None = None, device: str | torch.device | None = None,
                 progress: bool = True, callback: Callable[[str, int, int], None] | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        require_weights(config, weights)
        for name, ds in (("train_set", train_set), ("val_set", val_set)):
            if (ds is not None or name == "train_set") and not isinstance(ds, ColorizationDataset):
                raise TypeError(f"{name} must be a colorlab ColorizationDataset (e.g. "
                                f"colorlab.data.load_images(...).splits()['train']), got "
                                f"{type(ds).__name__}")
            if ds is not None and ds.size != config.size:
                raise ValueError(f"{name} has images of size {ds.size}, config.size is {config.size}")
        if len(train_set) == 0:
            raise ValueError("train_set is empty")
        self.config, self.run_dir = config, Path(run_dir)
        self.dist = context()  # rank and world size under torchrun (colorlab.distributed)
        self.device = self.dist.device(device)
        self.train_images = shard(train_set.images, self.dist).to(self.device)
        self._train_set = train_set
        self.val_images = val_set.images.to(self.device if not self.dist.active else "cpu") \
            if val_set is not None and len(val_set) else None
        self.weights = weights
        self.progress, self.callback = progress, callback
        self.cuda = self.device.type == "cuda"
        self.precision = resolve_precision(config.precision if config.amp else "fp32", self.device)
        #: keep the nearest-bin search's exactness flags on the device until the epoch ends (up
        #: to k = SRGB_EXACT_K); False reads each step's at once, as colorlab did before
        #: (``colorlab bench train --sync-search`` measures that path). Read when :meth:`fit` or
        #: :meth:`benchmark` starts, as is :attr:`cuda_graphs`
        self.defer_exactness = True
        #: record the model's part of each training step once as a CUDA graph and replay it
        #: (:mod:`colorlab.step_graph`): one launch per step instead of one per kernel. On a CPU the
        #: step runs eagerly on the same static inputs; :attr:`graphed` says whether a graph was
        #: recorded. Not under torchrun, with fp16, or with a classification loss whose search
        #: reads its flag every step (k > SRGB_EXACT_K, or defer_exactness off): a warning says so
        self.cuda_graphs = False
        #: the latest fit's or benchmark's :class:`~colorlab.training_step.TrainingStep` (its
        #: optimizer and scheduler released once it ended: the checkpoint holds their state)
        self.training_step: TrainingStep | None = None
        #: after :meth:`fit`: the epochs the run folder held before it, and the seconds it spent
        #: writing checkpoints and ``best.pt``
        self.start_epoch, self.checkpoint_seconds = 0, 0.0

    @functools.cached_property
    def data(self) -> str:
        """The training set's :func:`~colorlab.run_state.data_fingerprint`, recorded in
        checkpoints and checked on resume (hashed when :meth:`fit` first needs it: a benchmark
        never does)."""
        return data_fingerprint(self._train_set)

    # ------------------------------------------------------------------ pieces
    def _fresh_state(self) -> RunState:
        """A new run's model, optimizer, scheduler, generator and scaler (seeded)."""
        return RunState.fresh(self.config, self.device, self.precision, self.dist)

    def _training_step(self, state: RunState) -> TrainingStep:
        """The step that trains ``state.model`` from now on (through ``torch.compile`` when the
        config asks for it, recorded as a CUDA graph when :attr:`cuda_graphs` asks for it)."""
        self.training_step = TrainingStep(
            self.config, state.model, state.opt, state.sched, self.train_images,
            weights=self.weights, precision=self.precision, scaler=state.scaler, dist=self.dist,
            run_dir=self.run_dir, defer_exactness=self.defer_exactness,
            cuda_graphs=self.cuda_graphs)
        return self.training_step

    @property
    def compiled(self) -> bool:
        """Whether the step runs through ``torch.compile`` (False after compiling failed; before
        training: whether the config asks for it)."""
        step = self.training_step
        return step.compiled if step is not None else self.config.compile

    @property
    def graphed(self) -> bool:
        """Whether the training step is replayed from a recorded CUDA graph."""
        return self.training_step is not None and self.training_step.graphed

    def benchmark(self, steps: int = 20, warmup: int = 5, repeats: int = 1,
                  on_ready: Callable[[], object] | None = None) -> list[float]:
        """Training images/s of the real training step in each of ``repeats`` timed windows of
        ``steps`` steps, after ``warmup`` steps; no files written. One short window varies by
        10 % or more on a GPU, so take the median of several. ``on_ready`` is called between the
        warm-up and the first window (:func:`colorlab.worker_pool.wait_for_others`)."""
        if min(steps, repeats) < 1 or warmup < 0:
            raise ValueError(f"steps and repeats must be >= 1 and warmup >= 0, got steps={steps}, "
                             f"repeats={repeats}, warmup={warmup}")
        with cudnn_autotuning(self.cuda):
            return self._benchmark(steps, warmup, repeats, on_ready)

    def _benchmark(self, steps: int, warmup: int, repeats: int, on_ready) -> list[float]:
        state = self._fresh_state()
        step = self._training_step(state)
        n, b = len(self.train_images), self.config.batch_size
        state.model.train()

        def run(count: int) -> None:
            for i in range(count):
                idx = torch.arange(i * b, (i + 1) * b, device=self.device) % n
                step(idx, state.gen)
            step.check_exact("the benchmark's steps")
            if self.cuda:
                torch.cuda.synchronize()

        run(warmup)
        if on_ready is not None:
            on_ready()
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(steps)
            rates.append(steps * b / (time.perf_counter() - start))
        step.release()
        return rates

    @torch.no_grad()
    @trusted_values()
    def _validate(self, model) -> float | None:
        if self.val_images is None:
            return None
        model.eval()
        # each rank computes its share of the chunks; all are summed in chunk order (exact)
        parts = sharded_chunks(self.val_images, max(self.config.batch_size, 64), self.dist,
                               lambda chunk: self.training_step.forward_loss(
                                   model, chunk.to(self.device), None).double() * len(chunk))
        model.train()
        self.training_step.check_exact("the validation images")
        return float(sum(parts, torch.zeros((), dtype=torch.float64))) / len(self.val_images)

    # ------------------------------------------------------------------ main loop
    def fit(self, resume: bool = True) -> list[dict]:
        """Train to ``config.epochs``; returns the history (one dict per epoch).

        With ``resume=True`` an existing ``checkpoint.pt`` in ``run_dir`` is continued (a corrupt
        or incompatible one is an error, never a silent restart); ``resume=False`` refuses to
        overwrite an existing run. While it trains, the run folder is locked
        (:class:`colorlab.folder_lock.FolderLock`): a second process on the same folder stops at once
        with :class:`colorlab.folder_lock.FolderLocked`, naming this one's PID.
        """
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise NotADirectoryError(f"run folder {self.run_dir} is a file; choose a folder")
        make_folder(self.run_dir)
        self._bar = None
        # under torchrun rank 0 holds the lock for all ranks (one process per run folder)
        lock = FolderLock(self.run_dir, "run folder", self.run_dir / ".lock") if self.dist.main \
            else contextlib.nullcontext()
        with lock, cudnn_autotuning(self.cuda):
            try:
                return self._fit(resume)
            finally:  # after an error (a diverged run, a full disk) it shows on a clean line
                if self._bar is not None:
                    self._bar.close()

    def _fit(self, resume: bool) -> list[dict]:
        c, ck_path = self.config, self.run_dir / "checkpoint.pt"
        state = self._fresh_state()
        model, gen = state.model, state.gen
        start, history = 0, []
        if not ck_path.exists():
            refuse_foreign_files(self.run_dir, c)
        if ck_path.exists():
            if not resume:
                raise CheckpointError(f"{ck_path} exists: resume it or choose an empty run folder")
            # loaded on the CPU: RNG states must be CPU tensors, and load_state_dict copies the
            # weights and optimizer state onto the model's device
            start, history = state.restore(load_checkpoint(ck_path, "cpu"), c, self.dist,
                                           ck_path, self.data)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_seconds, self.start_epoch = 0.0, start
        for stale in self.run_dir.glob(".*.tmp"):  # left by a write that was killed midway
            if self.dist.main:  # (elsewhere it could be rank 0's write in progress)
                stale.unlink(missing_ok=True)
        _write_text(json.dumps(c.to_dict(), indent=2), self.run_dir / "config.json")
        step = self._training_step(state)
        n = len(self.train_images)
        # a compiled graph would recompile for a smaller last batch: it is dropped then
        steps = n // c.batch_size if c.compile and n > c.batch_size else math.ceil(n / c.batch_size)
        if c.size == 8 and n % c.batch_size == 1 and n > c.batch_size:
            steps = n // c.batch_size  # one image, a 1x1 deepest map: BatchNorm cannot use it
        bar = None
        if self.progress and self.dist.main:
            from tqdm.auto import tqdm

            bar = self._bar = tqdm(total=(c.epochs - start) * steps, desc=f"{self.run_dir.name}",
                                   unit="step", leave=False, disable=_no_terminal())
        model.train()
        best = BestWeights()
        for epoch in range(start, c.epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen).to(self.device)
            total = torch.zeros((), device=self.device, dtype=torch.float64)
            batches = perm.split(c.batch_size)[:steps]
            seen = sum(len(b) for b in batches)
            for i, idx in enumerate(batches):
                loss = step(idx, gen)
                total += loss.detach().double() * len(idx)
                if bar is not None:
                    bar.update(1)
                if self.callback is not None:
                    self.callback("step", epoch, i)
            total, seen = self.dist.sum(total, seen)  # over all ranks
            train_loss = total / seen
            self.dist.sync_buffers(model)  # rank 0's BatchNorm statistics on every rank
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training diverged: the mean training loss of epoch {epoch + 1} is "
                    f"{train_loss}; the last checkpoint in {self.run_dir} is from before it. "
                    f"Lower the learning rate (config.lr = {c.lr:g}) in a new run folder")
            step.check_exact(f"epoch {epoch + 1}")
            if self.cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            val_loss = self._validate(model)
            best.update(model, epoch + 1, val_loss, history)
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                            "seconds": seconds, "images_per_s": seen / seconds,
                            "val_seconds": time.perf_counter() - t0 - seconds,
                            "compiled": step.compiled, "cuda_graph": step.graphed,
                            "precision": self.precision,
                            **run_scale(c, self.dist)})
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", img_s=f"{seen / seconds:.0f}")
            if (epoch + 1) % c.checkpoint_every == 0 or epoch + 1 == c.epochs:
                t_save = time.perf_counter()
                best.save(_save, self.run_dir / "best.pt", c)  # before the checkpoint that covers it
                _save(state.checkpoint(c, self.dist, epoch + 1, history, self.data), ck_path)
                _write_text(json.dumps(history, indent=1), self.run_dir / "history.json")
                self.checkpoint_seconds += time.perf_counter() - t_save
            if self.callback is not None:
                self.callback("epoch", epoch, steps)
        if bar is not None:
            bar.close()
        self.model = model.eval()
        _save({"format": CHECKPOINT_FORMAT, "config": c.to_dict(), "model": model.state_dict(),
               "history": history, **run_scale(c, self.dist)}, self.run_dir / "model.pt")
        _write_text(json.dumps({"epochs": c.epochs, "final_train_loss":
                                      history[-1]["train_loss"] if history else None}),
                          self.run_dir / "done.json")
        step.release()  # the optimizer's memory is free for what follows (evaluation)
        self.dist.barrier()  # rank 0's files are written when fit returns on any rank
        return history
