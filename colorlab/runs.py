"""The runs of ``colorlab reproduce``: one run (train a model with one seed, evaluate it at two
points) and the worker processes that run several of them on one GPU.

A run is a :class:`RunJob` (dataset, loss, seed, the profile's sizes) and
:func:`train_and_evaluate` does all of it, in this process or in a worker process:

1. train (or resume, or reload) ``<work>/<dataset>/<loss>/seed<k>`` with
   :class:`colorlab.train.Trainer`;
2. colorize the test split with the final weights (epoch ``E``, the report's evaluation point)
   and with ``best.pt`` (the epoch of the lowest validation loss), the two points that
   ``book/07_training.ipynb`` compares;
3. score both with :func:`colorlab.evaluate.evaluate_predictions` (AuC, rebalanced AuC,
   classifier accuracy or agreement, chroma, colourfulness, saturation histogram, per-image AuC);
4. write ``evaluation.json`` in the run folder, so a resumed reproduction does not redo it, and for
   seed 0 the final test colorizations (``test_ab.pt``, float16) for the figures and the
   compatible top-level ``metrics.json``.

**Several runs on one GPU.** One width-1 network on 64 images of 88x88 keeps an H100 far below
its ceiling: each step is many small kernels, and the host launches them one by one
(``book/07_training.ipynb`` measures it). Independent runs (the seeds and configurations of
Table 1) then share the GPU well: while one process launches its next kernels, the others'
kernels run. Every run stays an ordinary :class:`colorlab.train.Trainer` in its own process and
run folder, so the exact resume, the checkpoints and the numbers are those of a run trained alone.
On a machine where NVIDIA's Multi-Process Service runs (``nvidia-cuda-mps-control -d``), the
processes' kernels also run at the same time instead of taking turns. :func:`run_jobs` runs a
picklable function over jobs, in this process (``workers=1``) or in ``workers`` fresh processes
(``spawn``: CUDA cannot be forked), and yields ``(job, result)`` as each finishes.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import torch

from ._stacks import enable_stack_dumps
from ._validation import check_positive_int
from .checkpoint import atomic_save, atomic_write_text
from .config import load_model
from .distributed import context, sharded_predict_ab
from .evaluate import evaluate_predictions, load_classifier
from .report import EXAMPLE_FILES
from .train import TrainConfig, Trainer
from .transforms import to_lab

Job = TypeVar("Job")  # whatever run_jobs is given to run

__all__ = ["RunJob", "train_and_evaluate", "run_name", "POINTS", "SEED_MEASURES", "run_jobs",
           "default_workers", "mps_active", "wait_for_others"]


#: the two evaluation points of every run
POINTS = ("final", "best")
#: what ``metrics.json`` keeps of each seed's entries (the error curves only for seed 0)
SEED_MEASURES = ("auc", "rebalanced_auc", "classifier_accuracy", "agreement", "mean_chroma",
                 "colourfulness", "saturation_histogram", "per_image_auc")


@dataclasses.dataclass(frozen=True)
class RunJob:
    """Everything a worker needs to train and evaluate one run (plain, picklable data)."""

    dataset: str
    loss: str
    seed: int
    profile: object  # a colorlab.reproduce.ReproduceProfile
    work: str
    device: str
    prior: tuple  # the smoothed empirical prior of the training split (313 floats)
    weights: tuple  # its rebalancing weights (313 floats), used by the "rebal" loss
    classifier: str | None = None
    progress: bool = False

    @property
    def run_dir(self) -> Path:
        return Path(self.work) / self.dataset / self.loss / f"seed{self.seed}"


def run_name(dataset: str, loss: str, seed: int) -> str:
    """The run's name in the provenance: ``celeba/ce`` for seed 0 (as in single-seed records),
    ``celeba/ce/seed1`` for the others.

    >>> run_name("celeba", "ce", 0), run_name("celeba", "ce", 2)
    ('celeba/ce', 'celeba/ce/seed2')
    """
    return f"{dataset}/{loss}" + (f"/seed{seed}" if seed else "")


_CLASSIFIERS: dict = {}  # loaded once per process
#: the layout of ``evaluation.json``; one of another layout is measured again, not reused
EVALUATION_FORMAT = 2


def _classifier(name: str | None, device: torch.device):
    if not name:
        return None
    if (name, str(device)) not in _CLASSIFIERS:
        _CLASSIFIERS[name, str(device)] = load_classifier(name, device)
    return _CLASSIFIERS[name, str(device)]


def _train(job: RunJob, splits: dict, dev: torch.device) -> tuple[Trainer, list[dict], dict]:
    prof = job.profile
    # under torchrun the profile's batch is shared out: the effective batch and lr stay the same
    config = TrainConfig(loss=job.loss, width=prof.width, epochs=prof.epochs,
                         batch_size=prof.batch_size // context().world_size, lr=prof.lr,
                         size=prof.size, seed=job.seed,
                         compile=prof.compile and dev.type == "cuda",
                         checkpoint_every=max(1, prof.epochs // 10), precision=prof.precision)
    t0 = time.perf_counter()
    weights = torch.tensor(job.weights, dtype=torch.float64) if job.loss == "rebal" else None
    trainer = Trainer(config, splits["train"], splits["val"], job.run_dir, weights=weights,
                      device=dev, progress=job.progress)
    trainer.cuda_graphs = prof.cuda_graphs and dev.type == "cuda"
    already = (job.run_dir / "done.json").exists()
    history = trainer.fit(resume=True)
    train_seconds = sum(h["seconds"] for h in history)
    return trainer, history, {
        "config": config.to_dict(), "epochs": len(history), "train_seconds": train_seconds,
        # all epochs, the first one's compilation included
        "images_per_s": sum(h["images_per_s"] * h["seconds"] for h in history)
        / max(train_seconds, 1e-9),
        # steady state: the median epoch
        "median_epoch_images_per_s": statistics.median(h["images_per_s"] for h in history),
        "wall_seconds_this_call": time.perf_counter() - t0, "resumed_complete": already,
        # where a run's wall time goes besides its training steps (in this call)
        "validation_seconds_this_call": sum(h.get("val_seconds", 0.0)
                                            for h in history[trainer.start_epoch:]),
        "checkpoint_seconds_this_call": trainer.checkpoint_seconds,
        "compiled": all(h.get("compiled", False) for h in history),
        "cuda_graph": all(h.get("cuda_graph", False) for h in history),
        "precision": trainer.precision, "final_train_loss": history[-1]["train_loss"]}


def _best_point(job: RunJob, trainer: Trainer, history: list[dict], dev) -> tuple:
    """The model of the lowest validation loss and its epoch (the final one without ``best.pt``):
    the earliest epoch of the lowest ``val_loss`` in the history, as the trainer chose it."""
    best = job.run_dir / "best.pt"
    if not best.is_file():
        return trainer.model, len(history)
    model, _ = load_model(best, dev)
    epoch = min((h for h in history if h.get("val_loss") is not None),
                key=lambda h: h["val_loss"])["epoch"]
    return model, int(epoch)


def save_examples(model, test_set, path: Path, device, n: int = 4) -> None:
    """Logits of the first ``n`` test images for the annealed-mean chapter, which decodes these
    four, real predictions without shipping a 100 MB checkpoint. In float16 the logits take
    ``n x 313 x (S/4)^2 x 2`` bytes: 1.2 MB at 88x88, so that the recorded ``results/`` with two
    such files per data set comes back from a device call in one ``results.tgz`` of at most
    16 MiB (``tests/recorded_checks.py``)."""
    L, ab = to_lab(test_set.images[:n])
    with torch.no_grad():
        logits = model.eval()(L.to(device)).float().cpu()
    atomic_save({"L": L.half(), "ab": ab.half(), "logits": logits.half(),
                 "files": test_set.files[:n]}, path)


def train_and_evaluate(job: RunJob) -> dict:
    """Train one run and evaluate it at its final and best epochs; returns
    ``{"name", "record", "evaluation": {"final": {...}, "best": {...}}}`` (also written to the
    run folder's ``evaluation.json``, which a later call returns as it is)."""
    from .reproduce import profile_dataset

    done = job.run_dir / "evaluation.json"
    if done.is_file() and (job.run_dir / "done.json").is_file():
        result = json.loads(done.read_text())
        if result.get("format") == EVALUATION_FORMAT:
            result["record"]["resumed_complete"] = True
            return result
    dev = torch.device(job.device)
    data = profile_dataset(job.dataset, job.profile)
    splits = data.splits(seed=0)  # the same split for every seed: per-image scores pair up
    trainer, history, record = _train(job, splits, dev)
    t0 = time.perf_counter()
    best_model, best_epoch = _best_point(job, trainer, history, dev)
    test = splits["test"]
    predictions = {point: sharded_predict_ab(model, test.images, device=dev,
                                             precision=job.profile.precision)
                   for point, model in (("final", trainer.model), ("best", best_model))}
    metrics = evaluate_predictions(test, predictions, torch.tensor(job.prior, dtype=torch.float64),
                                   _classifier(job.classifier, dev), device=dev)
    epochs = {"final": len(history), "best": best_epoch}
    evaluation = {}
    for point in POINTS:  # everything evaluate measured: seed 0's final entry is metrics.json's
        entry = dict(metrics[point])
        entry["epoch"] = epochs[point]
        entry["val_loss"] = history[epochs[point] - 1].get("val_loss")
        evaluation[point] = entry
    if job.seed == 0 and context().main:  # figures and top-level metrics: seed 0's final model
        atomic_save(predictions["final"].half(), job.run_dir / "test_ab.pt")
        if job.loss in EXAMPLE_FILES:  # the classification models' logits, for chapter 5
            save_examples(trainer.model, test, job.run_dir / EXAMPLE_FILES[job.loss], dev)
    record["evaluate_seconds"] = time.perf_counter() - t0  # both points, and their files
    result = {"format": EVALUATION_FORMAT, "name": run_name(job.dataset, job.loss, job.seed),
              "record": record, "evaluation": evaluation}
    if context().main:
        atomic_write_text(json.dumps(result), done)
    context().barrier()  # under torchrun: rank 0's files exist when any rank goes on
    return result



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


def _init_worker(threads: int, barrier) -> None:
    global _BARRIER
    torch.set_num_threads(threads)
    enable_stack_dumps()
    _BARRIER = barrier


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
    job is started. With ``barrier=True`` (``workers`` jobs at most) :func:`wait_for_others`
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
    error = None
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, shared)) as pool:
        pending = {pool.submit(fn, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    if error is None:
                        error = future.exception()
                        for other in pending:  # those not started yet
                            other.cancel()
                    continue
                yield job, future.result()
            pending = {f: j for f, j in pending.items() if not f.cancelled()}
    if error is not None:
        raise error
