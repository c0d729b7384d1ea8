"""Worker processes that share one GPU: several independent runs (or benchmark processes) at once
(``colorlab reproduce``, ``colorlab bench train --processes``).

One width-1 network on 64 images of 88x88 keeps an H100 far below its ceiling: each step is many
small kernels, and the host launches them one by one (``book/07_training.ipynb`` measures it). Independent runs (the seeds and configurations of
Table 1) then share the GPU well: while one process launches its next kernels, the others'
kernels run. Every run stays an ordinary :class:`colorlab.train.Trainer` in its own process and
run folder, so the exact resume, the checkpoints and the numbers are those of a run trained alone.
On a machine where NVIDIA's Multi-Process Service runs (``nvidia-cuda-mps-control -d``), the
processes' kernels also run at the same time instead of taking turns. :func:`run_jobs` runs a
picklable function over jobs, in this process (``workers=1``) or in ``workers`` fresh processes
(``spawn``: CUDA cannot be forked), and yields ``(job, result)`` as each finishes.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, TypeVar

import torch

from ._stacks import enable_stack_dumps
from ._validation import check_positive_int

__all__ = ["run_jobs", "default_workers", "mps_active", "wait_for_others"]

Job = TypeVar("Job")  # whatever run_jobs is given to run


def mps_active() -> bool:
    """Whether an NVIDIA Multi-Process Service control daemon seems to run on this machine (its
    pipe folder, ``$CUDA_MPS_PIPE_DIRECTORY`` or ``/tmp/nvidia-mps``, holds its control pipe).

    >>> isinstance(mps_active(), bool)
    True
    """
    pipes = os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")
    return os.path.exists(os.path.join(pipes, "control"))


def default_workers(device: torch.device, jobs: int, cap: int = 9) -> int:
    """Processes to train ``jobs`` runs with: 1 on a CPU (the cores are already shared by one
    run's threads), else ``min(jobs, cap, CPU cores - 1)`` (one core per process launches its
    kernels; one is left to the parent).

    >>> default_workers(torch.device("cpu"), 18)
    1
    """
    if device.type != "cuda":
        return 1
    return max(1, min(jobs, cap, (os.cpu_count() or 2) - 1))


_BARRIER = None  # in a worker started with barrier=True: the barrier shared by the workers
_STOP = None  # in a worker: set by the pool when no further job may start


class JobCancelled(RuntimeError):
    """The pool stopped (interrupted, or another job failed) before this job started."""


_HELD = (signal.SIGINT, signal.SIGTERM)  # held while the workers start (_signals_held)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """``SIGINT`` and ``SIGTERM`` held while this thread starts the workers (seconds: they import
    torch), then delivered here.

    The workers inherit the blocked mask, so a Ctrl-C or the pool's own interrupt during their
    start-up waits until :func:`_init_worker` ignores it, instead of printing a traceback from the
    middle of an import. Here, a signal that arrives meanwhile (on another thread, which does not
    block it) is only recorded, and raised when every worker has been given what it needs to
    start: raised midway, it left a started worker without its instructions (``EOFError``)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # when it starts the tracker, it unblocks both signals
    arrived: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        previous = {s: signal.signal(s, lambda signum, frame: arrived.append(signum))
                    for s in _HELD}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # what was pending is recorded now
        for s, handler in previous.items():
            signal.signal(s, handler)
        if arrived:
            signal.raise_signal(arrived[0])  # to the handler it would have met


def _init_worker(threads: int, barrier, stop) -> None:
    global _BARRIER, _STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an idle worker has nothing to interrupt
    if hasattr(signal, "pthread_sigmask"):  # what arrived while it started is dropped now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    torch.set_num_threads(threads)
    enable_stack_dumps()
    _BARRIER, _STOP = barrier, stop


def _run_job(fn: Callable[[Job], Any], job: Job) -> Any:
    """``fn(job)`` in a worker: refused once the pool has stopped, interruptible (``SIGINT``,
    Ctrl-C) while it runs."""
    if _STOP is not None and _STOP.is_set():
        raise JobCancelled("the pool stopped before this job started")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(job)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for_others() -> None:
    """In a worker of :func:`run_jobs` started with ``barrier=True``: wait until every worker
    has called this (so that timed windows overlap); elsewhere it returns at once."""
    if _BARRIER is not None:
        _BARRIER.wait()


def run_jobs(fn: Callable[[Job], Any], jobs: Iterable[Job], workers: int = 1,
             barrier: bool = False) -> Iterator[tuple[Job, Any]]:
    """Run ``fn(job)`` for every job, ``workers`` at a time; yield ``(job, fn(job))`` in the order
    they finish.

    ``workers=1`` runs them here, one after the other. Otherwise each worker is a fresh
    (``spawn``) process with ``CPU cores // workers`` torch threads, so ``fn`` and the jobs must
    be picklable (a module-level function, plain data). An exception in a job is raised here
    after the jobs already running have finished (their results are yielded first), and no new
    job is started. Interrupted (Ctrl-C, ``SIGTERM`` under the CLI: :mod:`colorlab._termination`),
    or when the caller stops reading, it starts no further job and interrupts the running ones
    instead of waiting for them. With ``barrier=True`` (``workers`` jobs at most) :func:`wait_for_others`
    makes the workers wait for each other. Meanwhile this process uses ``CPU cores - workers``
    torch threads (at least one); ``SIGUSR1`` makes a worker print its stack
    (:func:`colorlab._stacks.enable_stack_dumps`).

    >>> [r for _, r in run_jobs(abs, [-1, 2, -3])]
    [1, 2, 3]
    """
    workers = check_positive_int(workers, "workers")
    jobs = list(jobs)
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, fn(job)
        return
    workers = min(workers, len(jobs))
    if barrier and len(jobs) > workers:
        raise ValueError(f"barrier=True needs one worker per job, got {len(jobs)} jobs for "
                         f"{workers} workers")
    ctx = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
    shared = ctx.Barrier(workers) if barrier else None
    # while the workers run, this process's own torch work (whatever the caller does between the
    # results) keeps to the cores they leave: idle OpenMP threads spin, and a worker that waits
    # for a core launches its GPU kernels late
    parent_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cores - workers))
    try:
        yield from _pool_results(fn, jobs, workers, ctx, threads, shared)
    finally:
        torch.set_num_threads(parent_threads)


def _pool_results(fn, jobs: list, workers: int, ctx, threads: int, shared) -> Iterator[tuple]:
    """The body of :func:`run_jobs` with worker processes."""
    error, stop = None, ctx.Event()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, shared, stop)) as pool:
        pending: dict = {}
        try:  # (the first submit starts the workers; a stop meanwhile waits for none of them)
            with _signals_held():
                for job in jobs:
                    pending[pool.submit(_run_job, fn, job)] = job
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    if future.cancelled():
                        continue
                    if future.exception() is not None:
                        if error is None:
                            error = future.exception()
                            stop.set()  # the jobs already queued in a worker do not start
                            for other in pending:  # nor those still here
                                other.cancel()
                        continue
                    yield job, future.result()
                pending = {f: j for f, j in pending.items() if not f.cancelled()}
        except (KeyboardInterrupt, GeneratorExit):  # stopped, or the caller stopped reading
            _interrupt_workers(pool, stop)
            raise
    if error is not None:
        raise error


def _interrupt_workers(pool: ProcessPoolExecutor, stop, grace: float = 10.0) -> None:
    """Start no further job and interrupt (``SIGINT``) the running ones, so that leaving the
    pool does not wait for them: each stops as an interrupted run does (its last checkpoint is
    kept). A worker still alive ``grace`` seconds later is terminated, and killed if that does
    not end it either. Ctrl-C in a terminal reaches the workers by itself; ``SIGTERM`` and an
    error in the caller do not."""
    stop.set()
    running = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in running:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGINT)
            except ProcessLookupError:  # it ended meanwhile
                continue
    deadline = time.monotonic() + grace
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join(5.0)
        if process.is_alive():  # still starting (SIGTERM held) or stuck
            process.kill()
