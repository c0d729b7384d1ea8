"""One trainer for the report's three models (derived in ``book/07_training.ipynb``).

The whole dataset lives on the training device as uint8; each step augments, converts to Lab and
soft-encodes on that device, in batch, so data loading never starves a GPU. On CUDA the forward
pass runs in autocast (bf16, or fp16 with a gradient scaler on pre-Ampere GPUs:
:mod:`colorlab.config`) with channels_last memory, Adam is fused and ``torch.compile`` is
optional. Checkpoints are atomic and hold everything needed to continue bit-for-bit: model,
optimizer, scheduler, epoch, RNG states, config and history. A run killed at any moment loses only
the work since its last checkpoint; resumed, it ends with the same weights as an uninterrupted run
(on CPU, where kernels are deterministic). Under ``torchrun`` it trains one model on several
devices with DistributedDataParallel, each rank holding its shard (:mod:`colorlab.distributed`).

Run folder: ``checkpoint.pt`` (latest state), ``history.json`` (per-epoch losses, Fig. 4),
``model.pt`` (final weights + config, what ``colorlab colorize`` loads), ``best.pt`` (the weights
of the epoch with the lowest validation loss, in the same format, with its ``epoch``) and
``done.json``.
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ._validation import error_summary, trusted_values
from .checkpoint import (CHECKPOINT_FORMAT, CheckpointError, FolderLock, atomic_save,
                         atomic_write_text, load_checkpoint, make_folder)
from .config import (TrainConfig, autocast, build_model, default_device, grad_scaler, load_model,
                     resolve_precision)
from .data import ColorizationDataset
from .distributed import context, main_only, shard, sharded_chunks
from .gamut import SRGB_EXACT_K, all_exact, deferred_exactness
from .step_graph import StepGraph
from .losses import L2Loss, RebalancedCrossEntropy
from .transforms import augment, downsample_ab, to_lab

__all__ = ["TrainConfig", "Trainer", "build_model", "load_model", "default_device", "RUN_FILES"]

#: the files a run writes into its folder (besides ``checkpoint.pt``)
RUN_FILES = ("config.json", "history.json", "model.pt", "best.pt", "done.json")


def _no_terminal() -> bool:
    """No progress bar in logs: stderr is no terminal, and this is no notebook (whose bar is a
    widget)."""
    return not sys.stderr.isatty() and "ipykernel" not in sys.modules

# under torchrun only rank 0 writes the run's files (colorlab.distributed)
_save, _write_text = main_only(atomic_save), main_only(atomic_write_text)


def _is_compile_error(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) comes from torch.compile's stack."""
    while err is not None:
        if type(err).__module__.startswith(("torch._dynamo", "torch._inductor", "triton")):
            return True
        err = err.__cause__
    return False


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
        if config.loss == "rebal" and weights is None:
            raise ValueError("loss='rebal' needs the rebalancing weights "
                             "(colorlab.prior.rebalance_weights of the training prior)")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
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
        self.val_images = val_set.images.to(self.device if not self.dist.active else "cpu") \
            if val_set is not None and len(val_set) else None
        self.weights = weights
        self.progress, self.callback = progress, callback
        self.cuda = self.device.type == "cuda"
        self.precision = resolve_precision(config.precision if config.amp else "fp32", self.device)
        self._exact_flags: list[torch.Tensor] = []  # gamut.deferred_exactness, read per epoch
        #: keep the nearest-bin search's exactness flags on the device until the epoch ends (up
        #: to k = SRGB_EXACT_K); False reads each step's at once, as colorlab did before
        #: (``colorlab bench train --sync-search`` measures that path)
        self.defer_exactness = True
        #: record the model's part of each training step once as a CUDA graph and replay it
        #: (:mod:`colorlab.step_graph`): one launch per step instead of one per kernel. On a CPU the
        #: step runs eagerly on the same static inputs; :attr:`graphed` says whether a graph was
        #: recorded. Not under torchrun, with fp16, or with a classification loss whose search
        #: reads its flag every step (k > SRGB_EXACT_K, or defer_exactness off): a warning says so
        self.cuda_graphs = False
        self._graph: StepGraph | None = None
        #: after :meth:`fit`: the epochs the run folder held before it, and the seconds it spent
        #: writing checkpoints and ``best.pt``
        self.start_epoch, self.checkpoint_seconds = 0, 0.0

    # ------------------------------------------------------------------ pieces
    def _loss_fn(self) -> torch.nn.Module:
        c = self.config
        if c.loss == "l2":
            return L2Loss()
        weights = self.weights.float() if c.loss == "rebal" else None
        return RebalancedCrossEntropy(weights, k=c.k, sigma=c.sigma).to(self.device)

    def _fresh_state(self):
        c = self.config
        torch.manual_seed(c.seed)
        model = build_model(c).to(self.device)
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay,
                               fused=self.cuda)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        gen = torch.Generator().manual_seed(c.seed + 1 + self.dist.rank * 2 ** 32)
        self.scaler = grad_scaler(self.device, self.precision)
        return model, opt, sched, gen

    def _rng_states(self, gen) -> dict:
        return {"generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.cuda else []}

    def _checkpoint(self, model, opt, sched, gen, epoch: int, history: list) -> dict:
        # every rank's random states (a collective: all ranks call this), rank 0's at the top
        ranks = self.dist.gather(self._rng_states(gen))
        return {"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "epoch": epoch,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), **ranks[0], "history": history,
                "scaler": self.scaler.state_dict(),
                **self._scale(), **({"rank_states": ranks} if self.dist.active else {})}

    def _scale(self) -> dict:
        """World size, effective batch (all ranks together) and learning rate of this run."""
        return {"world_size": self.dist.world_size, "lr": self.config.lr,
                "effective_batch_size": self.config.batch_size * self.dist.world_size}

    def _restore(self, ck: dict, model, opt, sched, gen) -> tuple[int, list]:
        saved = {"precision": "auto", **ck["config"]}  # checkpoints from before the setting
        if saved != self.config.to_dict():
            changed = sorted(k for k in self.config.to_dict()
                             if saved.get(k) != self.config.to_dict()[k])
            raise CheckpointError(f"{self.run_dir / 'checkpoint.pt'} belongs to a run with another "
                                  f"config (differs in {', '.join(changed)}); use another run "
                                  f"folder or delete it")
        if ck.get("world_size", 1) != self.dist.world_size:
            raise CheckpointError(f"{self.run_dir / 'checkpoint.pt'} was trained by "
                                  f"{ck.get('world_size', 1)} process(es), this run has "
                                  f"{self.dist.world_size}: resume it with torchrun "
                                  f"--nproc_per_node {ck.get('world_size', 1)} (each rank's "
                                  f"data shard and random state are in the checkpoint)")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        rng = ck["rank_states"][self.dist.rank] if self.dist.active else ck
        gen.set_state(rng["generator"])
        torch.set_rng_state(rng["torch_rng"])
        if self.cuda and rng["cuda_rng"]:
            torch.cuda.set_rng_state_all(rng["cuda_rng"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        return int(ck["epoch"]), list(ck["history"])

    def _forward_loss(self, forward, loss_fn, images: torch.Tensor, gen: torch.Generator | None):
        return self._loss(forward, loss_fn, *self._inputs(images, gen), self._exact_flags)

    def _inputs(self, images: torch.Tensor, gen: torch.Generator | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> the network's input ``L (B, 1, S, S)`` and the target ab at the
        output resolution ``(B, 2, S/4, S/4)`` (augmented when ``gen`` is given)."""
        rgb = augment(images, gen) if gen is not None else images.float() / 255.0
        L, ab = to_lab(rgb)
        if self.cuda:
            L = L.contiguous(memory_format=torch.channels_last)
        return L, downsample_ab(ab)

    def _deferring(self) -> bool:
        """Whether the nearest-bin search keeps its exactness flags on the device (the targets
        are sRGB colours: up to SRGB_EXACT_K neighbours the fast search is exact for all of
        them, and the flags are read once per epoch by _check_exact_targets)."""
        return self.defer_exactness and self.config.k <= SRGB_EXACT_K

    def _loss(self, forward, loss_fn, L: torch.Tensor, ab: torch.Tensor, flags: list
              ) -> torch.Tensor:
        with autocast(self.device, self.precision, cache=self._graph is None):
            out = forward(L)
        with deferred_exactness(flags if self._deferring() else None):
            return loss_fn(out.float(), ab)

    def _check_exact_targets(self, where: str) -> None:
        """Raise if a nearest-bin search since the last check was not exact (one read from the
        device, agreed by every rank). It cannot happen for the ab of sRGB colours with
        ``k <= SRGB_EXACT_K`` (:mod:`colorlab.gamut`); this makes sure of it."""
        flags, self._exact_flags = self._exact_flags, []
        inexact = 0.0 if all_exact(flags) else 1.0
        if self.dist.sum(inexact)[0] > 0:
            raise RuntimeError(
                f"the soft-encoded targets of {where} were not exact: a nearest-bin search met ab "
                f"values outside the sRGB gamut, which training images cannot hold (k = "
                f"{self.config.k}); the last checkpoint in {self.run_dir} is from before it. "
                f"Please report this with the run's config.json")

    def _use_model(self, model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn) -> None:
        """Train ``model`` from now on: through ``torch.compile`` when the config asks for it,
        and its step recorded as a CUDA graph when :attr:`cuda_graphs` asks for it."""
        self._model, self.compiled = model, self.config.compile
        self._wrapped = self.dist.wrap(model)  # DistributedDataParallel under torchrun
        self._forward = torch.compile(self._wrapped) if self.config.compile else self._wrapped
        self._proven = not self.config.compile
        self._graph = None
        why_not = self._why_no_graph() if self.cuda_graphs else None
        if why_not:
            warnings.warn(f"the training step is not recorded as a CUDA graph: {why_not}",
                          RuntimeWarning, stacklevel=3)
        elif self.cuda_graphs:
            self._graph = StepGraph(lambda L, ab, flags: self._core(
                self._forward, loss_fn, opt, L, ab, flags), opt)
            # its warm-up steps run unrecorded, as does a smaller last batch: that is intended
            opt._warned_capturable_if_run_uncaptured = True
        for group in opt.param_groups:  # a recorded Adam keeps its step counter on the device
            group["capturable"] = self._graph is not None and self.cuda  # (checkpoints say)

    def _why_no_graph(self) -> str | None:
        """Why this run's step cannot be recorded as a CUDA graph (None: it can)."""
        if self.dist.active:
            return "under torchrun, DistributedDataParallel's all-reduce runs outside the graph"
        if self.scaler.is_enabled():
            return "fp16's gradient scaler reads every step's gradients back to skip a bad step"
        if self.config.loss != "l2" and not self._deferring():
            return (f"with k = {self.config.k} > SRGB_EXACT_K = {SRGB_EXACT_K} (or "
                    f"defer_exactness off) the nearest-bin search reads its flag every step")
        return None

    @property
    def graphed(self) -> bool:
        """Whether the training step is replayed from a recorded CUDA graph."""
        return self._graph is not None and self._graph.recorded

    def _step(self, loss_fn, opt, sched, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One optimisation step on the training images ``idx``; returns the (device) loss.

        Compilation happens in the first step. If it fails (no C compiler, a Triton or inductor
        error), a warning says why and the run continues uncompiled, from the same random state:
        a slower run beats a lost one. ``self.compiled`` and the history record which it was.
        (Should only the backward pass fail to compile, the first batch has already updated the
        BatchNorm running statistics once, and does so again in the retry.)"""
        if self._proven:
            return self._update(self._forward, loss_fn, opt, sched, idx, gen)
        state = gen.get_state()
        try:
            loss = self._update(self._forward, loss_fn, opt, sched, idx, gen)
        except Exception as err:  # noqa: BLE001 - only compiler errors are caught, see below
            if not _is_compile_error(err):
                raise
            warnings.warn(f"torch.compile failed ({error_summary(err)}); training continues "
                          f"without compilation", RuntimeWarning, stacklevel=2)
            gen.set_state(state)
            self._forward, self.compiled = self._wrapped, False
            loss = self._update(self._forward, loss_fn, opt, sched, idx, gen)
        self._proven = True
        return loss

    def _update(self, forward, loss_fn, opt, sched, idx: torch.Tensor, gen: torch.Generator
                ) -> torch.Tensor:
        """One step: the batch's inputs and targets, then the model's part (:meth:`_core`,
        replayed from a CUDA graph once one is recorded) and the scheduler. No value is read back
        from the device, so a GPU is never left waiting for the host: the NaN check and the
        nearest-bin search's exactness flags are read once per epoch (beyond
        ``k = SRGB_EXACT_K`` the flag is read at each step)."""
        with trusted_values():
            L, ab = self._inputs(self.train_images[idx], gen)
        if self._graph is not None and len(idx) == self.config.batch_size:
            loss = self._graph(L, ab, self._exact_flags)  # a smaller last batch: eagerly
        else:
            loss = self._core(forward, loss_fn, opt, L, ab, self._exact_flags)
        with warnings.catch_warnings():  # an fp16 step skipped first makes torch warn here
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            sched.step()
        return loss

    def _core(self, forward, loss_fn, opt, L: torch.Tensor, ab: torch.Tensor, flags: list
              ) -> torch.Tensor:
        """The model's part of a step: forward, loss, backward, optimizer step (what
        :class:`~colorlab.step_graph.StepGraph` records). Gradients are zeroed in place when the
        step is recorded (a graph replays on the same memory)."""
        with trusted_values():
            loss = self._loss(forward, loss_fn, L, ab, flags)
        opt.zero_grad(set_to_none=self._graph is None)
        if self.scaler.is_enabled():  # fp16: scaled backward; a step with inf/NaN is skipped
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
            return loss
        loss.backward()
        opt.step()
        return loss

    def benchmark(self, steps: int = 20, warmup: int = 5, repeats: int = 1,
                  on_ready: Callable[[], object] | None = None) -> list[float]:
        """Training images/s of the real training step in each of ``repeats`` timed windows of
        ``steps`` steps, after ``warmup`` steps; no files written. One short window varies by
        10 % or more on a GPU, so take the median of several. ``on_ready`` is called between the
        warm-up and the first window (:func:`colorlab.runs.wait_for_others`)."""
        if min(steps, repeats) < 1 or warmup < 0:
            raise ValueError(f"steps and repeats must be >= 1 and warmup >= 0, got steps={steps}, "
                             f"repeats={repeats}, warmup={warmup}")
        with cudnn_autotuning(self.cuda):
            return self._benchmark(steps, warmup, repeats, on_ready)

    def _benchmark(self, steps: int, warmup: int, repeats: int, on_ready) -> list[float]:
        model, opt, sched, gen = self._fresh_state()
        loss_fn = self._loss_fn()
        self._use_model(model, opt, loss_fn)
        n, b = len(self.train_images), self.config.batch_size
        model.train()

        def run(count: int) -> None:
            for i in range(count):
                idx = torch.arange(i * b, (i + 1) * b, device=self.device) % n
                self._step(loss_fn, opt, sched, idx, gen)
            self._check_exact_targets("the benchmark's steps")
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
        return rates

    @torch.no_grad()
    @trusted_values()
    def _validate(self, model, loss_fn) -> float | None:
        if self.val_images is None:
            return None
        model.eval()
        # each rank computes its share of the chunks; all are summed in chunk order (exact)
        parts = sharded_chunks(self.val_images, max(self.config.batch_size, 64), self.dist,
                               lambda chunk: self._forward_loss(model, loss_fn,
                                                                chunk.to(self.device), None
                                                                ).double() * len(chunk))
        model.train()
        self._check_exact_targets("the validation images")
        return float(sum(parts, torch.zeros((), dtype=torch.float64))) / len(self.val_images)

    def _refuse_foreign_files(self) -> None:
        """Without a checkpoint, the files a run writes may only be there from this same run
        (killed before its first checkpoint): anything else would be overwritten."""
        config = self.run_dir / "config.json"
        try:
            ours = config.is_file() and json.loads(config.read_text()) == self.config.to_dict()
        except (OSError, ValueError):
            ours = False
        found = [name for name in RUN_FILES if (self.run_dir / name).exists()]
        if found and not (ours and found == ["config.json"]):
            raise CheckpointError(
                f"run folder {self.run_dir} holds {', '.join(found)} but no checkpoint.pt of this "
                f"run, and training would overwrite them; use a new or empty --run-dir")

    def _track_best(self, model, epoch: int, val_loss: float | None, history: list,
                    best: dict | None) -> dict | None:
        """The weights of the epoch with the lowest validation loss so far (earliest on ties),
        kept in memory until the next checkpoint writes them; ``history`` holds the epochs before
        this one (those of a resumed run included), whose best is already in ``best.pt``."""
        earlier = [h["val_loss"] for h in history if h.get("val_loss") is not None]
        if val_loss is None or (earlier and val_loss >= min(earlier)):
            return best
        return {"epoch": epoch, "val_loss": val_loss,
                "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}

    def _save_best(self, best: dict | None) -> None:
        if best is not None and not best.get("saved"):
            _save({"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(),
                   "model": best["model"], "epoch": best["epoch"],
                   "val_loss": best["val_loss"]}, self.run_dir / "best.pt")
            best["saved"] = True

    # ------------------------------------------------------------------ main loop
    def fit(self, resume: bool = True) -> list[dict]:
        """Train to ``config.epochs``; returns the history (one dict per epoch).

        With ``resume=True`` an existing ``checkpoint.pt`` in ``run_dir`` is continued (a corrupt
        or incompatible one is an error, never a silent restart); ``resume=False`` refuses to
        overwrite an existing run. While it trains, the run folder is locked
        (:class:`colorlab.checkpoint.FolderLock`): a second process on the same folder stops at once
        with :class:`colorlab.checkpoint.FolderLocked`, naming this one's PID.
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
        model, opt, sched, gen = self._fresh_state()
        start, history = 0, []
        if not ck_path.exists():
            self._refuse_foreign_files()
        if ck_path.exists():
            if not resume:
                raise CheckpointError(f"{ck_path} exists: resume it or choose an empty run folder")
            # loaded on the CPU: RNG states must be CPU tensors, and load_state_dict copies the
            # weights and optimizer state onto the model's device
            start, history = self._restore(load_checkpoint(ck_path, "cpu"), model, opt, sched,
                                           gen)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_seconds, self.start_epoch = 0.0, start
        for stale in self.run_dir.glob(".*.tmp"):  # left by a write that was killed midway
            if self.dist.main:  # (elsewhere it could be rank 0's write in progress)
                stale.unlink(missing_ok=True)
        _write_text(json.dumps(c.to_dict(), indent=2), self.run_dir / "config.json")
        loss_fn = self._loss_fn()
        self._use_model(model, opt, loss_fn)
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
        best = None
        for epoch in range(start, c.epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen).to(self.device)
            total = torch.zeros((), device=self.device, dtype=torch.float64)
            batches = perm.split(c.batch_size)[:steps]
            seen = sum(len(b) for b in batches)
            for step, idx in enumerate(batches):
                loss = self._step(loss_fn, opt, sched, idx, gen)
                total += loss.detach().double() * len(idx)
                if bar is not None:
                    bar.update(1)
                if self.callback is not None:
                    self.callback("step", epoch, step)
            total, seen = self.dist.sum(total, seen)  # over all ranks
            train_loss = total / seen
            self.dist.sync_buffers(model)  # rank 0's BatchNorm statistics on every rank
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training diverged: the mean training loss of epoch {epoch + 1} is "
                    f"{train_loss}; the last checkpoint in {self.run_dir} is from before it. "
                    f"Lower the learning rate (config.lr = {c.lr:g}) in a new run folder")
            self._check_exact_targets(f"epoch {epoch + 1}")
            if self.cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            val_loss = self._validate(model, loss_fn)
            best = self._track_best(model, epoch + 1, val_loss, history, best)
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                            "seconds": seconds, "images_per_s": seen / seconds,
                            "val_seconds": time.perf_counter() - t0 - seconds,
                            "compiled": self.compiled, "cuda_graph": self.graphed,
                            "precision": self.precision,
                            **self._scale()})
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", img_s=f"{seen / seconds:.0f}")
            if (epoch + 1) % c.checkpoint_every == 0 or epoch + 1 == c.epochs:
                t_save = time.perf_counter()
                self._save_best(best)  # before the checkpoint that covers it
                _save(self._checkpoint(model, opt, sched, gen, epoch + 1, history), ck_path)
                _write_text(json.dumps(history, indent=1), self.run_dir / "history.json")
                self.checkpoint_seconds += time.perf_counter() - t_save
            if self.callback is not None:
                self.callback("epoch", epoch, steps)
        if bar is not None:
            bar.close()
        self.model = model.eval()
        _save({"format": CHECKPOINT_FORMAT, "config": c.to_dict(), "model": model.state_dict(),
               "history": history, **self._scale()}, self.run_dir / "model.pt")
        _write_text(json.dumps({"epochs": c.epochs, "final_train_loss":
                                      history[-1]["train_loss"] if history else None}),
                          self.run_dir / "done.json")
        self.dist.barrier()  # rank 0's files are written when fit returns on any rank
        return history
