"""One trainer for the report's three models (derived in ``book/07_training.ipynb``).

The whole dataset lives on the training device as uint8; each step augments, converts to Lab and
soft-encodes on that device, in batch, so data loading never starves a GPU. On CUDA the forward
pass runs in autocast (bf16, or fp16 with a gradient scaler on pre-Ampere GPUs:
:mod:`colorlab.precision`) with channels_last memory, Adam is fused and ``torch.compile`` is
optional. Checkpoints are atomic and hold everything needed to continue bit-for-bit: model,
optimizer, scheduler, epoch, RNG states, config and history. A run killed at any moment loses only
the work since its last checkpoint; resumed, it ends with the same weights as an uninterrupted run
(on CPU, where kernels are deterministic).

Run folder: ``checkpoint.pt`` (latest state), ``history.json`` (per-epoch losses, Fig. 4),
``model.pt`` (final weights + config, what ``colorlab colorize`` loads) and ``done.json``.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ._validation import trusted_values
from .batches import augment, downsample_ab, to_lab
from .checkpoint import (CHECKPOINT_FORMAT, CheckpointError, atomic_save, atomic_write_text,
                         load_checkpoint)
from .data import ColorizationDataset
from .losses import L2Loss, RebalancedCrossEntropy
from .precision import autocast, grad_scaler, resolve_precision
from .train_config import TrainConfig, build_model, default_device, load_model

__all__ = ["TrainConfig", "Trainer", "build_model", "load_model", "default_device"]


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
        for name, ds in (("train_set", train_set), ("val_set", val_set)):
            if ds is not None and ds.size != config.size:
                raise ValueError(f"{name} has images of size {ds.size}, config.size is {config.size}")
        if len(train_set) == 0:
            raise ValueError("train_set is empty")
        self.config, self.run_dir = config, Path(run_dir)
        self.device = default_device(device)
        self.train_images = train_set.images.to(self.device)
        self.val_images = val_set.images.to(self.device) if val_set is not None and len(val_set) \
            else None
        self.weights = weights
        self.progress, self.callback = progress, callback
        self.cuda = self.device.type == "cuda"
        self.precision = resolve_precision(config.precision if config.amp else "fp32", self.device)

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
        gen = torch.Generator().manual_seed(c.seed + 1)
        self.scaler = grad_scaler(self.device, self.precision)
        return model, opt, sched, gen

    def _checkpoint(self, model, opt, sched, gen, epoch: int, history: list) -> dict:
        return {"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "epoch": epoch,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.cuda else [],
                "scaler": self.scaler.state_dict(), "history": history}

    def _restore(self, ck: dict, model, opt, sched, gen) -> tuple[int, list]:
        saved = {"precision": "auto", **ck["config"]}  # checkpoints from before the setting
        if saved != self.config.to_dict():
            changed = sorted(k for k in self.config.to_dict()
                             if saved.get(k) != self.config.to_dict()[k])
            raise CheckpointError(f"{self.run_dir / 'checkpoint.pt'} belongs to a run with another "
                                  f"config (differs in {', '.join(changed)}); use another run "
                                  f"folder or delete it")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        if self.cuda and ck["cuda_rng"]:
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        return int(ck["epoch"]), list(ck["history"])

    def _forward_loss(self, forward, loss_fn, images: torch.Tensor, gen: torch.Generator | None):
        rgb = augment(images, gen) if gen is not None else images.float() / 255.0
        L, ab = to_lab(rgb)
        if self.cuda:
            L = L.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            out = forward(L)
        return loss_fn(out.float(), downsample_ab(ab))

    def _use_model(self, model: torch.nn.Module) -> None:
        """Train ``model`` from now on: through ``torch.compile`` when the config asks for it."""
        self._model, self.compiled = model, self.config.compile
        self._forward = torch.compile(model) if self.config.compile else model
        self._proven = not self.config.compile

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
            first_line = (str(err).strip().splitlines() or [""])[0][:300]
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {first_line}); "
                          f"training continues without compilation", RuntimeWarning, stacklevel=2)
            gen.set_state(state)
            self._forward, self.compiled = self._model, False
            loss = self._update(self._forward, loss_fn, opt, sched, idx, gen)
        self._proven = True
        return loss

    def _update(self, forward, loss_fn, opt, sched, idx: torch.Tensor, gen: torch.Generator
                ) -> torch.Tensor:
        """Forward, loss, backward and optimizer step. No value is read back from the device
        except the nearest-bin search's exactness flag, so a GPU is never left waiting for the
        host (NaN checks: once per epoch)."""
        with trusted_values():
            loss = self._forward_loss(forward, loss_fn, self.train_images[idx], gen)
        opt.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():  # fp16: scaled backward; a step with inf/NaN is skipped
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
            with warnings.catch_warnings():  # a skipped first step makes torch warn here
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                sched.step()
            return loss
        loss.backward()
        opt.step()
        sched.step()
        return loss

    def benchmark(self, steps: int = 20, warmup: int = 5, repeats: int = 1) -> list[float]:
        """Training images/s of the real training step in each of ``repeats`` timed windows of
        ``steps`` steps, after ``warmup`` steps; no files written. One short window varies by
        10 % or more on a GPU, so take the median of several."""
        if min(steps, repeats) < 1 or warmup < 0:
            raise ValueError(f"steps and repeats must be >= 1 and warmup >= 0, got steps={steps}, "
                             f"repeats={repeats}, warmup={warmup}")
        with cudnn_autotuning(self.cuda):
            return self._benchmark(steps, warmup, repeats)

    def _benchmark(self, steps: int, warmup: int, repeats: int) -> list[float]:
        model, opt, sched, gen = self._fresh_state()
        self._use_model(model)
        loss_fn = self._loss_fn()
        n, b = len(self.train_images), self.config.batch_size
        model.train()

        def run(count: int) -> None:
            for i in range(count):
                idx = torch.arange(i * b, (i + 1) * b, device=self.device) % n
                self._step(loss_fn, opt, sched, idx, gen)
            if self.cuda:
                torch.cuda.synchronize()

        run(warmup)
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
        total, count = torch.zeros((), device=self.device, dtype=torch.float64), 0
        for chunk in self.val_images.split(max(self.config.batch_size, 64)):
            total += self._forward_loss(model, loss_fn, chunk, None).double() * len(chunk)
            count += len(chunk)
        model.train()
        return float(total) / count

    # ------------------------------------------------------------------ main loop
    def fit(self, resume: bool = True) -> list[dict]:
        """Train to ``config.epochs``; returns the history (one dict per epoch).

        With ``resume=True`` an existing ``checkpoint.pt`` in ``run_dir`` is continued (a corrupt
        or incompatible one is an error, never a silent restart); ``resume=False`` refuses to
        overwrite an existing run.
        """
        with cudnn_autotuning(self.cuda):
            return self._fit(resume)

    def _fit(self, resume: bool) -> list[dict]:
        c, ck_path = self.config, self.run_dir / "checkpoint.pt"
        model, opt, sched, gen = self._fresh_state()
        start, history = 0, []
        if ck_path.exists():
            if not resume:
                raise CheckpointError(f"{ck_path} exists: resume it or choose an empty run folder")
            # loaded on the CPU: RNG states must be CPU tensors, and load_state_dict copies the
            # weights and optimizer state onto the model's device
            start, history = self._restore(load_checkpoint(ck_path, "cpu"), model, opt, sched,
                                           gen)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob(".*.tmp"):  # left by a write that was killed midway
            stale.unlink(missing_ok=True)
        atomic_write_text(json.dumps(c.to_dict(), indent=2), self.run_dir / "config.json")
        self._use_model(model)
        loss_fn = self._loss_fn()
        n = len(self.train_images)
        # a compiled graph would recompile for a smaller last batch: it is dropped then
        steps = n // c.batch_size if c.compile and n > c.batch_size else math.ceil(n / c.batch_size)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=(c.epochs - start) * steps, desc=f"{self.run_dir.name}", unit="step",
                       leave=False)
        model.train()
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
            train_loss = float(total) / seen
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training diverged: the mean training loss of epoch {epoch + 1} is "
                    f"{train_loss}; the last checkpoint in {self.run_dir} is from before it. "
                    f"Lower the learning rate (config.lr = {c.lr:g}) in a new run folder")
            if self.cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            val_loss = self._validate(model, loss_fn)
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                            "seconds": seconds, "images_per_s": seen / seconds,
                            "compiled": self.compiled, "precision": self.precision})
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", img_s=f"{seen / seconds:.0f}")
            if (epoch + 1) % c.checkpoint_every == 0 or epoch + 1 == c.epochs:
                atomic_save(self._checkpoint(model, opt, sched, gen, epoch + 1, history), ck_path)
                atomic_write_text(json.dumps(history, indent=1), self.run_dir / "history.json")
            if self.callback is not None:
                self.callback("epoch", epoch, steps)
        if bar is not None:
            bar.close()
        self.model = model.eval()
        atomic_save({"format": CHECKPOINT_FORMAT, "config": c.to_dict(),
                     "model": model.state_dict(), "history": history}, self.run_dir / "model.pt")
        atomic_write_text(json.dumps({"epochs": c.epochs, "final_train_loss":
                                      history[-1]["train_loss"] if history else None}),
                          self.run_dir / "done.json")
        return history
