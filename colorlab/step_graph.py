"""A training step recorded once as a CUDA graph and replayed (``book/07_training.ipynb``).

At 88x88 one step of the report's network is a few hundred small kernels (convolutions, their
gradients, BatchNorm, the loss, Adam). Launching them one by one from Python takes about as
long as the GPU takes to run them, so a single process leaves the GPU idle much of the time:
the benchmark recorded before this module (an NVIDIA H200, November 2026) reached 15 % of the
card's measured ceiling with one model at 88x88; chapter 7 shows the records of the run in
``results/``. A CUDA graph records the kernels of one step once; each
later step is one launch (``torch.cuda.CUDAGraph.replay``) that runs them all again on the same
memory.

What can be recorded, and how :class:`StepGraph` keeps to it:

* **Fixed memory.** The step reads its inputs from static tensors, and each call copies the new
  batch into them. Gradients stay in place (``zero_grad(set_to_none=False)`` inside the step) and
  the optimizer must be *capturable* (its step counter on the device).
* **No host reads.** Nothing in the step may wait for the GPU: the nearest-bin search keeps its
  exactness flags on the device (:func:`colorlab.bin_search.deferred_exactness`); the graph ANDs
  them into one flag per step, which each call appends to the caller's list.
* **Fixed shapes.** A batch of another shape (an epoch's smaller last batch) runs eagerly.
* **Fixed constants.** The learning rate is a constant of the recorded optimizer step; a call
  after it changed raises rather than train with the old one (on a CPU too, so that a test
  there catches what would go wrong on a GPU).
* **Data preparation stays outside.** Augmentation draws on a CPU generator (so that a seeded run
  repeats on any device); those draws would be frozen into a graph. Only the model's part of the
  step (forward, loss, backward, optimizer) is recorded.

The first ``warmup`` calls run eagerly (on a side stream on CUDA, as PyTorch's CUDA-graph notes
ask): they initialise the optimizer state, pick cuDNN algorithms and compile, if the model is
compiled. The next call records and replays. On a CPU nothing is recorded; the step still runs
on the static inputs, so the same code path is tested without a GPU. Should recording fail, a
warning says why and every later step runs eagerly.

>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> def step(x, y, flags):
...     opt.zero_grad(set_to_none=False)
...     loss = ((model(x) - y) ** 2).mean()
...     loss.backward()
...     opt.step()
...     return loss
>>> graph = StepGraph(step, opt, warmup=1)
>>> losses = [graph(torch.ones(4, 2), torch.zeros(4, 1), []) for _ in range(3)]
>>> graph.recorded, bool(losses[2] < losses[0])   # on the CPU: the static path, no graph
(False, True)
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch

from ._validation import error_summary

__all__ = ["StepGraph", "WARMUP_STEPS", "NOT_RECORDED"]

#: eager steps before recording (PyTorch's example uses 3; they also compile a compiled model)
WARMUP_STEPS = 3
#: what the command line prints when ``--cuda-graphs`` was asked for and nothing was recorded
NOT_RECORDED = ("(--cuda-graphs: no CUDA graph was recorded; it needs a CUDA device, and a "
                "warning above says why when one was there)")


class StepGraph:
    """Run ``step(*inputs, flags) -> loss`` eagerly ``warmup`` times, then record it once as a
    CUDA graph (on a CUDA device) and replay it for every later call with inputs of the recorded
    shapes.

    Args:
        step: forward, loss, backward and optimizer step on the input tensors; it must not read
            anything back from the device, must keep gradients in place
            (``zero_grad(set_to_none=False)``) and appends the nearest-bin search's exactness
            flags (0-dim bool tensors) to ``flags``
            (:func:`colorlab.bin_search.deferred_exactness`).
        optimizer: the optimizer ``step`` steps; on CUDA it must be capturable.
        warmup: eager calls before recording (>= 1: the optimizer state must exist first).
        record: record a CUDA graph (default: when the first input is on a CUDA device).

    Each call returns the step's loss as a tensor of its own (a later replay does not change it)
    and appends one flag to ``flags``, all of the step's own (where it made any). A call with
    inputs of other shapes (and every call after a failed recording) runs ``step`` eagerly on
    them and appends its flags as they come.

    Memory: the graph keeps the activations of one step in a pool of its own, beside the memory
    that eager work (validation, a smaller last batch) takes from the ordinary cache.
    """

    def __init__(self, step: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer,
                 warmup: int = WARMUP_STEPS, record: bool | None = None) -> None:
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"warmup must be an int >= 1 (the optimizer state must exist "
                             f"before recording), got {warmup!r}")
        self.step, self.optimizer, self.warmup, self.record = step, optimizer, warmup, record
        self.calls = 0
        self.recorded = False  #: whether a CUDA graph was recorded (and is replayed)
        self.failed: str | None = None  #: why recording failed, if it did
        self._static: tuple[torch.Tensor, ...] | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._loss: torch.Tensor | None = None
        self._flag: torch.Tensor | None = None
        self._lrs: list | None = None
        self._device: torch.device | None = None
        self._side: torch.cuda.Stream | None = None

    def __call__(self, *args) -> torch.Tensor:
        *inputs, flags = args
        if self.failed is not None or (self._static is not None and not self._fits(inputs)):
            return self.step(*inputs, flags)
        if self._static is None:
            if self.calls < self.warmup:
                loss = self._warmup(inputs, flags)
                self.calls += 1
                return loss
            self._prepare(inputs)
            if self.failed is not None:
                return self.step(*inputs, flags)
        self._check_constants()
        for static, new in zip(self._static, inputs):
            static.copy_(new)
        self._replay()
        self.calls += 1
        if self._flag is not None:
            flags.append(self._flag.clone())
        return self._loss.clone()

    # ------------------------------------------------------------------ pieces
    def _fits(self, inputs) -> bool:
        return all(s.shape == x.shape and s.dtype == x.dtype and s.device == x.device
                   for s, x in zip(self._static, inputs)) and len(inputs) == len(self._static)

    def _warmup(self, inputs, flags: list) -> torch.Tensor:
        mine: list = []
        if inputs[0].device.type != "cuda":
            loss = self.step(*inputs, mine)
            _append_all(mine, flags)
            return loss
        # before recording: on a side stream, as PyTorch's notes on CUDA graphs ask, and
        # synchronised (a handful of steps), so that no memory is shared across streams; the
        # flags' reduction runs here too, so that no kernel is first launched while recording
        device = inputs[0].device
        if self._side is None:  # one side stream for all warm-up steps, as in PyTorch's example
            self._side = torch.cuda.Stream(device)
        side = self._side
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            loss = self.step(*inputs, mine)
            _append_all(mine, flags)
        torch.cuda.synchronize(device)
        return loss

    def _prepare(self, inputs) -> None:
        """Static copies of the inputs, then the graph (or, without recording, the static path)."""
        self._static = tuple(x.clone() for x in inputs)
        self._lrs = self._constants()
        device = inputs[0].device
        if not (self.record if self.record is not None else device.type == "cuda"):
            return
        flags: list = []
        try:
            # torch.cuda.graph records on the current device's stream: make it the inputs'
            # device, and restore the caller's stream even if ending the recording fails
            with torch.cuda.device(device), torch.cuda.stream(torch.cuda.current_stream(device)):
                graph = torch.cuda.CUDAGraph()
                torch.cuda.synchronize(device)
                try:
                    with torch.cuda.graph(graph):
                        loss = self.step(*self._static, flags)
                        flag = _all(flags)
                except Exception:
                    with contextlib.suppress(Exception):
                        torch.cuda.synchronize(device)
                    raise
        except Exception as err:  # noqa: BLE001 - recording is an optimisation: fall back
            self.failed = error_summary(err)
            warnings.warn(f"recording the training step as a CUDA graph failed ({self.failed});"
                          f" training continues without it", RuntimeWarning, stacklevel=3)
            self._static = None
            return
        self._graph, self._loss, self._flag, self.recorded = graph, loss.detach(), flag, True
        self._device = device

    def _replay(self) -> None:
        if self._graph is not None:
            with torch.cuda.device(self._device):
                self._graph.replay()
            return
        flags: list = []  # the static path without a graph (a CPU): the same memory, eagerly
        self._loss = self.step(*self._static, flags).detach()
        self._flag = _all(flags)

    def _constants(self) -> list:
        # a tensor rate is read by the recorded kernels themselves (no host read here)
        return [None if torch.is_tensor(group["lr"]) else group["lr"]
                for group in self.optimizer.param_groups]

    def _check_constants(self) -> None:
        if self._constants() != self._lrs:  # also without a graph: the same rules everywhere
            raise RuntimeError(
                f"the learning rate changed from {self._lrs} to {self._constants()} after the "
                f"training step was recorded as a CUDA graph, which keeps the rate it was "
                f"recorded with; train with a constant rate or without CUDA graphs")


def _all(flags: list) -> torch.Tensor | None:
    """One 0-dim bool tensor: whether all ``flags`` are true (None for no flags)."""
    return torch.stack(flags).all() if flags else None


def _append_all(mine: list, flags: list) -> None:
    """Append the one flag of a step's ``mine`` (if any) to the caller's ``flags``."""
    flag = _all(mine)
    if flag is not None:
        flags.append(flag)
