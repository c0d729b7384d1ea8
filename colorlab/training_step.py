"""The training step of :class:`colorlab.train.Trainer` (derived in ``book/07_training.ipynb``).

One step turns a batch of uint8 training images into the network's input ``L`` and its target
ab (augmented, converted to Lab and soft-encoded on the training device), runs the model's part
(forward pass under autocast, loss, backward pass, Adam) and steps the scheduler. The model runs
through ``torch.compile`` when the config asks for it, and its part of the step is recorded once
as a CUDA graph and replayed when the step is built with ``cuda_graphs=True``
(:mod:`colorlab.step_graph`). No value is read back from the device inside a step: the
nearest-bin search's exactness flags collect in :attr:`TrainingStep.flags` and
:meth:`TrainingStep.check_exact` reads them once per epoch.

The trainer owns the run (its state, checkpoints, validation schedule and files); this module
owns what happens to one batch.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.optim.lr_scheduler import LRScheduler

from ._validation import check_weights, error_summary, trusted_values
from .bin_search import SRGB_EXACT_K, all_exact, deferred_exactness
from .config import TrainConfig, autocast
from .distributed import DistContext, context
from .gamut import ab_bins
from .losses import L2Loss, RebalancedCrossEntropy
from .step_graph import StepGraph
from .transforms import augment, downsample_ab, to_lab

__all__ = ["TrainingStep", "loss_module", "require_weights"]


def loss_module(config: TrainConfig, weights: torch.Tensor | None,
                device: str | torch.device = "cpu") -> torch.nn.Module:
    """The run's loss: Eq. 1 (``"l2"``) or Eq. 2 without (``"ce"``) or with (``"rebal"``) the
    ``(313,)`` rebalancing ``weights`` (Chapter 4), on ``device``.

    >>> loss_module(TrainConfig(loss="l2"), None)
    L2Loss()
    """
    require_weights(config, weights)
    if config.loss == "l2":
        return L2Loss()
    weights = weights.float() if config.loss == "rebal" else None
    return RebalancedCrossEntropy(weights, k=config.k, sigma=config.sigma).to(device)


def require_weights(config: TrainConfig, weights: torch.Tensor | None) -> None:
    """Refuse ``loss="rebal"`` without valid rebalancing weights (a plain cross-entropy would
    train in their place, silently; all-zero weights would train nothing), and weights with
    another loss (they would be ignored, silently).

    >>> require_weights(TrainConfig(loss="rebal"), None)
    Traceback (most recent call last):
    ...
    ValueError: loss='rebal' needs the rebalancing weights (colorlab.prior.rebalance_weights of the training prior)
    """
    if config.loss == "rebal" and weights is None:
        raise ValueError("loss='rebal' needs the rebalancing weights "
                         "(colorlab.prior.rebalance_weights of the training prior)")
    if weights is None:
        return
    if config.loss != "rebal":
        raise ValueError(f"weights are used only by loss='rebal', and config.loss is "
                         f"{config.loss!r}: pass weights=None, or train with loss='rebal'")
    check_weights(weights, len(ab_bins()))


def _is_compile_error(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) comes from torch.compile's stack."""
    while err is not None:
        if type(err).__module__.startswith(("torch._dynamo", "torch._inductor", "triton")):
            return True
        err = err.__cause__
    return False


class TrainingStep:
    """One run's training step: ``step(idx, gen)`` trains ``model`` on the training images
    ``images[idx]`` and returns the batch's mean loss, a device scalar (never read here).

    Args:
        config: the run's :class:`~colorlab.config.TrainConfig` (loss, ``k``, ``sigma``,
            ``batch_size``, ``compile``).
        model: the network, on the training device.
        opt: its optimizer (Adam).
        sched: its learning-rate scheduler, stepped after every step.
        images: ``(N, 3, S, S)`` uint8 training images on the training device.
        weights: ``(313,)`` rebalancing weights, required for ``loss="rebal"``.
        precision: ``"bf16"``, ``"fp16"`` or ``"fp32"`` (:func:`colorlab.config.resolve_precision`).
        scaler: the gradient scaler (enabled for fp16 only: :func:`colorlab.config.grad_scaler`).
        dist: the torchrun context (:func:`colorlab.distributed.context`).
        run_dir: the run's folder, named by :meth:`check_exact`'s error.
        defer_exactness: keep the search's exactness flags on the device until
            :meth:`check_exact` (up to ``k = SRGB_EXACT_K``); False reads each step's at once.
        cuda_graphs: record the model's part of the step as a CUDA graph and replay it.

    >>> from colorlab.config import build_model
    >>> from colorlab.data import SampleImages
    >>> config = TrainConfig(loss="ce", width=0.0625, batch_size=4, size=16)
    >>> model = build_model(config)
    >>> opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    >>> step = TrainingStep(config, model, opt, sched, SampleImages(size=16, n=8).images,
    ...                     scaler=torch.amp.GradScaler("cpu", enabled=False))
    >>> loss = step(torch.arange(4), torch.Generator().manual_seed(0))
    >>> loss.shape, bool(loss > 0), len(step.flags)   # on a CPU each flag is read at once
    (torch.Size([]), True, 0)
    >>> step.check_exact("the example's step")
    """

    def __init__(self, config: TrainConfig, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 sched: LRScheduler, images: torch.Tensor, *,
                 weights: torch.Tensor | None = None, precision: str = "fp32",
                 scaler: torch.amp.GradScaler, dist: DistContext | None = None,
                 run_dir: str | Path = ".", defer_exactness: bool = True,
                 cuda_graphs: bool = False):
        self.config, self.model, self.opt, self.sched = config, model, opt, sched
        self.images, self.precision, self.scaler = images, precision, scaler
        self.dist = dist if dist is not None else context()
        self.run_dir, self.defer_exactness = Path(run_dir), defer_exactness
        self.device = images.device
        self.cuda = self.device.type == "cuda"
        self.loss_fn = loss_module(config, weights, self.device)
        #: the search's exactness flags since the last :meth:`check_exact` (device booleans)
        self.flags: list[torch.Tensor] = []
        self._wrapped = self.dist.wrap(model)  # DistributedDataParallel under torchrun
        #: the model as the step calls it: compiled when the config asks (until that fails)
        self.forward = torch.compile(self._wrapped) if config.compile else self._wrapped
        #: whether the model runs through ``torch.compile`` (False once compiling failed)
        self.compiled = config.compile
        self._proven = not config.compile
        #: the recording of the model's part of the step (None: every step runs eagerly)
        self.graph: StepGraph | None = None
        why_not = self.why_no_graph() if cuda_graphs else None
        if why_not:
            warnings.warn(f"the training step is not recorded as a CUDA graph: {why_not}",
                          RuntimeWarning, stacklevel=2)
        elif cuda_graphs:
            self.graph = StepGraph(lambda L, ab, flags: self.core(self.forward, L, ab, flags), opt)
            # its warm-up steps run unrecorded, as does a smaller last batch: that is intended
            opt._warned_capturable_if_run_uncaptured = True
        for group in opt.param_groups:  # a recorded Adam keeps its step counter on the device
            group["capturable"] = self.graph is not None and self.cuda  # (checkpoints say)

    # ------------------------------------------------------------------ why not
    def deferring(self) -> bool:
        """Whether the nearest-bin search keeps its exactness flags on the device (the targets
        are sRGB colours: up to SRGB_EXACT_K neighbours the fast search is exact for all of
        them, and :meth:`check_exact` reads the flags once per epoch)."""
        return self.defer_exactness and self.config.k <= SRGB_EXACT_K

    def why_no_graph(self) -> str | None:
        """Why this run's step cannot be recorded as a CUDA graph (None: it can)."""
        if self.dist.active:
            return "under torchrun, DistributedDataParallel's all-reduce runs outside the graph"
        if self.scaler.is_enabled():
            return "fp16's gradient scaler reads every step's gradients back to skip a bad step"
        if self.config.loss != "l2" and not self.deferring():
            return (f"with k = {self.config.k} > SRGB_EXACT_K = {SRGB_EXACT_K} (or "
                    f"defer_exactness off) the nearest-bin search reads its flag every step")
        return None

    @property
    def graphed(self) -> bool:
        """Whether the step is replayed from a recorded CUDA graph."""
        return self.graph is not None and self.graph.recorded

    # ------------------------------------------------------------------ the step
    def inputs(self, images: torch.Tensor, gen: torch.Generator | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> the network's input ``L (B, 1, S, S)`` and the target ab at the
        output resolution ``(B, 2, S/4, S/4)`` (augmented when ``gen`` is given)."""
        rgb = augment(images, gen) if gen is not None else images.float() / 255.0
        L, ab = to_lab(rgb)
        if self.cuda:
            L = L.contiguous(memory_format=torch.channels_last)
        return L, downsample_ab(ab)

    def loss(self, forward, L: torch.Tensor, ab: torch.Tensor, flags: list) -> torch.Tensor:
        """The mean loss of ``forward(L)`` against the targets ``ab`` (a float32 scalar)."""
        with autocast(self.device, self.precision, cache=self.graph is None):
            out = forward(L)
        with deferred_exactness(flags if self.deferring() else None):
            return self.loss_fn(out.float(), ab)

    def forward_loss(self, forward, images: torch.Tensor, gen: torch.Generator | None
                     ) -> torch.Tensor:
        """:meth:`loss` of uint8 ``images`` (validation passes ``gen=None``: no augmentation)."""
        return self.loss(forward, *self.inputs(images, gen), self.flags)

    def __call__(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One optimisation step on the training images ``idx``; returns the (device) loss.

        Compilation happens in the first step. If it fails (no C compiler, a Triton or inductor
        error), a warning says why and the run continues uncompiled, from the same random state:
        a slower run beats a lost one. :attr:`compiled` and the history record which it was.
        (Should only the backward pass fail to compile, the first batch has already updated the
        BatchNorm running statistics once, and does so again in the retry.)"""
        if self.opt is None:
            raise RuntimeError("this training step was released when its training ended; "
                               "build a new TrainingStep (or call Trainer.fit) to train again")
        if self._proven:
            return self.update(self.forward, idx, gen)
        state = gen.get_state()
        try:
            loss = self.update(self.forward, idx, gen)
        except Exception as err:  # noqa: BLE001 - only compiler errors are caught, see below
            if not _is_compile_error(err):
                raise
            warnings.warn(f"torch.compile failed ({error_summary(err)}); training continues "
                          f"without compilation", RuntimeWarning, stacklevel=2)
            gen.set_state(state)
            self.forward, self.compiled = self._wrapped, False
            loss = self.update(self.forward, idx, gen)
        self._proven = True
        return loss

    def release(self) -> None:
        """Let go of the optimizer and scheduler once training is over (their state is in the
        run's checkpoint), so that their memory is free for what follows, such as evaluation. A
        recorded graph keeps what it replays until the step itself is dropped."""
        self.opt = self.sched = None

    def update(self, forward, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One step: the batch's inputs and targets, then the model's part (:meth:`core`,
        replayed from a CUDA graph once one is recorded) and the scheduler. No value is read back
        from the device, so a GPU is never left waiting for the host: the NaN check and the
        nearest-bin search's exactness flags are read once per epoch (beyond
        ``k = SRGB_EXACT_K`` the flag is read at each step)."""
        with trusted_values():
            L, ab = self.inputs(self.images[idx], gen)
        if self.graph is not None and len(idx) == self.config.batch_size:
            loss = self.graph(L, ab, self.flags)  # a smaller last batch: eagerly
        else:
            loss = self.core(forward, L, ab, self.flags)
        with warnings.catch_warnings():  # an fp16 step skipped first makes torch warn here
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.sched.step()
        return loss

    def core(self, forward, L: torch.Tensor, ab: torch.Tensor, flags: list) -> torch.Tensor:
        """The model's part of a step: forward, loss, backward, optimizer step (what
        :class:`~colorlab.step_graph.StepGraph` records). Gradients are zeroed in place when the
        step is recorded (a graph replays on the same memory)."""
        with trusted_values():
            loss = self.loss(forward, L, ab, flags)
        self.opt.zero_grad(set_to_none=self.graph is None)
        if self.scaler.is_enabled():  # fp16: scaled backward; a step with inf/NaN is skipped
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            return loss
        loss.backward()
        self.opt.step()
        return loss

    # ------------------------------------------------------------------ once per epoch
    def check_exact(self, where: str) -> None:
        """Raise if a nearest-bin search since the last check was not exact (one read from the
        device, agreed by every rank). It cannot happen for the ab of sRGB colours with
        ``k <= SRGB_EXACT_K`` (:mod:`colorlab.bin_search`); this makes sure of it."""
        flags, self.flags = self.flags, []
        inexact = 0.0 if all_exact(flags) else 1.0
        if self.dist.sum(inexact)[0] > 0:
            raise RuntimeError(
                f"the soft-encoded targets of {where} were not exact: a nearest-bin search met ab "
                f"values outside the sRGB gamut, which training images cannot hold (k = "
                f"{self.config.k}); the last checkpoint in {self.run_dir} is from before it. "
                f"Please report this with the run's config.json")
