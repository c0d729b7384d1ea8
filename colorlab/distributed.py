"""Training on several GPUs: ``torchrun`` + PyTorch ``DistributedDataParallel`` (the "Scaling up"
section of ``book/07_training.ipynb``).

``torchrun --nproc_per_node N -m colorlab train ...`` starts N processes (ranks). Each one

* joins the process group (NCCL on CUDA, gloo on the CPU) and uses ``cuda:<local rank>``;
* keeps its **shard** of the training set on its own device, as uint8: rank ``r`` of ``W`` holds
  training images ``r, r + W, r + 2W, ...``, ``n // W`` of them, so every rank takes the same number
  of steps (the last ``n mod W < W`` images are left out, as ``DistributedSampler(drop_last=True)``
  does);
* draws batches of ``config.batch_size`` from its shard (``batch_size`` is per rank: the effective
  batch is ``W * batch_size``), with its own augmentation generator (seed ``seed + 1 + r * 2**32``);
* trains the same model: DDP all-reduces (averages) the gradients in every backward pass.

BatchNorm: statistics per rank. Each rank normalises with the statistics of its own batch (as the
single-GPU run does with a batch of ``batch_size``); rank 0's running averages are broadcast at
every forward pass (by DDP) and after every epoch, so all ranks end with identical buffers.
SyncBatchNorm would average the batch statistics over ranks at the cost of one all-reduce per
BatchNorm layer per forward pass; a per-rank batch of 8 or more (the report used 8) does not
need it.

The history's losses are means over all ranks' images and its ``images_per_s`` counts the
images of all ranks; it also records ``world_size``, ``effective_batch_size`` and ``lr``.

Rank 0 alone prints and writes files (checkpoints atomically, via
:func:`colorlab.checkpoint.atomic_save`). A checkpoint records the world size and every rank's
random state, so a run resumes exactly with the same world size; another world size is an error
(the shards and random streams would differ). World size 1 under ``torchrun`` trains without the
DDP wrapper (an all-reduce over one process does nothing): no work is added to a step.

Validation is exact across ranks: the validation set is cut into the chunks that one process
uses, rank ``r`` computes chunks ``r, r + W, ...``, and the per-chunk results are summed in chunk
order on every rank, so the metric equals the single-process one bit for bit (on the CPU; on GPUs
up to cuDNN's choice of algorithms, which also varies between two runs of one process).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Callable

import torch
import torch.distributed as dist

__all__ = ["DistContext", "setup", "context", "shutdown", "shard", "chunk_owner",
           "sharded_chunks", "sharded_predict_ab", "main_first", "main_only"]

#: collectives that wait longer than this fail instead of hanging (a rank died or stalled)
TIMEOUT = datetime.timedelta(minutes=float(os.environ.get("COLORLAB_DIST_TIMEOUT_MIN", "30")))


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node.

    >>> ctx = DistContext()
    >>> ctx.main, ctx.world_size, ctx.active
    (True, 1, False)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the one that prints and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether a process group of more than one rank is running."""
        return self.world_size > 1

    def device(self, device: str | torch.device | None = None) -> torch.device:
        """This rank's device: ``cuda:<local rank>`` under torchrun with CUDA, else ``device``.

        >>> DistContext().device("cpu")
        device(type='cpu')
        """
        from .config import default_device

        dev = default_device(device)
        if dev.type == "cuda" and dev.index is None and _launched():
            return torch.device("cuda", self.local_rank)
        return dev

    # -------------------------------------------------------------- collectives
    def sum(self, *values: torch.Tensor | float) -> list[float]:
        """Each value summed over ranks (float64), as Python floats.

        >>> DistContext().sum(torch.tensor(2.0), 3)
        [2.0, 3.0]
        """
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if self.active:
            t = _collective_tensor(t)
            dist.all_reduce(t)
        return t.cpu().tolist()

    def gather(self, obj: object) -> list:
        """``obj`` of every rank, in rank order (picklable objects).

        >>> DistContext().gather({"a": 1})
        [{'a': 1}]
        """
        if not self.active:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank (so all ranks take the same decision).

        >>> DistContext().broadcast(3)
        3
        """
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
        if self.active:
            for buf in model.buffers():
                dist.broadcast(buf, src=0)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``DistributedDataParallel(model)`` when several ranks train, else ``model`` itself."""
        if not self.active:
            return model
        dev = next(model.parameters()).device
        ids = [dev] if dev.type == "cuda" else None
        # buffers (BatchNorm running statistics) follow rank 0's at every forward pass (default)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _launched() -> bool:
    """Whether torchrun (or another launcher) started this process as a rank."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _collective_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the device the process group's backend communicates through."""
    if dist.get_backend() == "nccl":
        return t.to(torch.device("cuda", torch.cuda.current_device()))
    return t


def setup(device: str | torch.device | None = None) -> DistContext:
    """Join the process group when started by ``torchrun`` (no-op otherwise); returns the context.

    The backend is NCCL when this rank trains on CUDA, gloo on the CPU. Idempotent.

    >>> setup("cpu").world_size   # not under torchrun: a single process
    1
    """
    if not _launched() or dist.is_initialized():
        return context()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), local_rank)
    dev = ctx.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=dev)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return ctx


def context() -> DistContext:
    """The running process group's context (rank 0 of 1 when there is none)."""
    if not dist.is_available() or not dist.is_initialized():
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def shutdown() -> None:
    """Leave the process group (after a barrier, so no rank exits while others still talk)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(images: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Rank ``r``'s training images: ``images[r::W]``, ``len(images) // W`` of them.

    >>> shard(torch.arange(7), DistContext(rank=1, world_size=3)).tolist()
    [1, 4]
    """
    per_rank = len(images) // ctx.world_size
    if per_rank == 0:
        raise ValueError(f"{len(images)} training images cannot be shared by {ctx.world_size} "
                         f"ranks: use fewer processes or more images")
    return images[ctx.rank::ctx.world_size][:per_rank]


def chunk_owner(index: int, ctx: DistContext) -> bool:
    """Whether this rank evaluates chunk ``index`` (round robin).

    >>> [chunk_owner(i, DistContext(rank=1, world_size=2)) for i in range(4)]
    [False, True, False, True]
    """
    return index % ctx.world_size == ctx.rank


def sharded_chunks(values: torch.Tensor, chunk: int, ctx: DistContext,
                   fn: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """``[fn(c) for c in values.split(chunk)]`` (results on the CPU), each chunk computed by one
    rank and shared with all: the same list, bit for bit, as one process computes.

    >>> sharded_chunks(torch.arange(5.0), 2, DistContext(), lambda c: c.sum())
    [tensor(1.), tensor(5.), tensor(4.)]
    """
    chunks = values.split(chunk)
    mine = {i: fn(c).detach() for i, c in enumerate(chunks) if chunk_owner(i, ctx)}
    # copied to the CPU once all are queued: on a GPU the first copy waits for them all, instead
    # of every chunk waiting for its own before the next is queued
    mine = {i: t.cpu() for i, t in mine.items()}
    if not ctx.active:
        return [mine[i] for i in range(len(chunks))]
    merged: dict[int, torch.Tensor] = {}
    for part in ctx.gather(mine):
        merged.update(part)
    return [merged[i] for i in range(len(chunks))]


def sharded_predict_ab(model: torch.nn.Module, images: torch.Tensor, ctx: DistContext | None = None,
                       batch_size: int = 64, device: torch.device | str | None = None,
                       precision: str = "auto") -> torch.Tensor:
    """:func:`colorlab.evaluate.predict_ab` of ``images`` with the chunks shared out over ranks;
    every rank returns the full ``(N, 2, S, S)`` result, equal to one process's.

    >>> from colorlab.models import ColorizationNet
    >>> sharded_predict_ab(ColorizationNet(width=0.0625), torch.zeros(3, 3, 16, 16,
    ...                    dtype=torch.uint8)).shape
    torch.Size([3, 2, 16, 16])
    """
    from .evaluate import predict_ab

    ctx = ctx or context()
    parts = sharded_chunks(images, batch_size, ctx,
                           lambda c: predict_ab(model, c, batch_size=len(c), device=device,
                                                precision=precision))
    return torch.cat(parts) if parts else predict_ab(model, images, device=device,
                                                     precision=precision)


def main_first(load: Callable[[], object]) -> object:
    """``load()`` on rank 0, then on the other ranks (which find what rank 0 cached); returns its
    result on every rank.

    >>> main_first(lambda: 42)
    42
    """
    ctx = context()
    result, failure = None, None
    if ctx.main:
        try:
            result = load()
        except Exception as err:
            if not ctx.active:
                raise
            failure = err
    # rank 0's outcome reaches every rank, so a failure there stops all of them at once
    error = ctx.broadcast(None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    if error is not None:
        raise RuntimeError(f"rank 0 failed: {error}")
    return result if ctx.main else load()


def main_only(write: Callable[..., None]) -> Callable[..., None]:
    """``write`` called on rank 0 only (file writers: the other ranks hold the same data).

    >>> import tempfile
    >>> from colorlab.checkpoint import atomic_write_text
    >>> with tempfile.TemporaryDirectory() as d:
    ...     main_only(atomic_write_text)("hi", f"{d}/x.txt")
    ...     open(f"{d}/x.txt").read()
    'hi'
    """
    def wrapped(*args, **kwargs) -> None:
        if context().main:
            write(*args, **kwargs)

    wrapped.__doc__ = write.__doc__
    return wrapped
