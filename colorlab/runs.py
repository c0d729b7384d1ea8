"""The runs of ``colorlab reproduce``: one run trains a model with one seed and evaluates it at
two points.

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

Several runs share one GPU in worker processes (:mod:`colorlab.worker_pool`); every run stays an
ordinary :class:`colorlab.train.Trainer` in its own process and run folder.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from .checkpoint import (CheckpointError, atomic_save, atomic_write_text, file_in_the_way,
                         load_checkpoint)
from .folder_lock import FolderLock
from .config import load_model
from .distributed import context, sharded_predict_ab
from .evaluate import evaluate_predictions, load_classifier
from .report import EXAMPLE_FILES
from .run_folder import refuse_foreign_files
from .run_state import check_resumable, data_fingerprint
from .train import TrainConfig, Trainer
from .transforms import to_lab
# the worker processes lived here before colorlab.worker_pool: still importable from colorlab.runs
from .worker_pool import default_workers, mps_active, run_jobs, wait_for_others

__all__ = ["RunJob", "train_and_evaluate", "check_run_folder", "run_name", "POINTS",
           "SEED_MEASURES", "run_jobs", "default_workers", "mps_active", "wait_for_others"]


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


def _config(job: RunJob, dev: torch.device) -> TrainConfig:
    """The run's training configuration, from its profile."""
    prof = job.profile
    # under torchrun the profile's batch is shared out: the effective batch and lr stay the same
    return TrainConfig(loss=job.loss, width=prof.width, epochs=prof.epochs,
                       batch_size=prof.batch_size // context().world_size, lr=prof.lr,
                       size=prof.size, seed=job.seed, compile=prof.compile and dev.type == "cuda",
                       checkpoint_every=max(1, prof.epochs // 10), precision=prof.precision)


#: what a refused run folder's error adds under ``colorlab reproduce``
WORK_DIR_HINT = "(its work folder is reproduce's --work-dir: choose another, or delete that " \
                "run folder)"


def _evaluation(job: RunJob) -> dict | None:
    """The run folder's ``evaluation.json`` if it is there, whole, of a run that finished."""
    done = job.run_dir / "evaluation.json"
    if not (done.is_file() and (job.run_dir / "done.json").is_file()):
        return None
    try:
        result = json.loads(done.read_text())
        if isinstance(result, dict) and isinstance(result["record"], dict):
            return result
    except (OSError, ValueError, KeyError, TypeError):  # damaged: evaluated again
        pass
    return None


def _finished(job: RunJob, data: str, dev: torch.device) -> dict | None:
    """The run's ``evaluation.json`` if it is finished and evaluated as this job asks: only this
    configuration's evaluation on the images whose fingerprint is ``data``, with this
    classifier. A run of another profile (other epochs, say) or data goes on to the trainer,
    whose checkpoint check says what differs; another classifier only evaluates the trained run
    again (:func:`_trained`)."""
    result = _evaluation(job)
    if result is not None and _trained(job, data, dev, result) and \
            result.get("format") == EVALUATION_FORMAT and \
            result.get("classifier", "unrecorded") == job.classifier:
        return result
    return None


def _trained(job: RunJob, data: str, dev: torch.device, result: dict | None) -> bool:
    """Whether ``result``, the run folder's :func:`_evaluation`, is of a run that finished
    training in this configuration on the images whose fingerprint is ``data``: then its
    ``model.pt`` and ``best.pt`` are evaluated again, even when its ``checkpoint.pt`` (the
    largest file, needed only to go on training) was deleted."""
    return result is not None and result["record"].get("config") == _config(job, dev).to_dict() \
        and result["record"].get("data") == data


def _reloadable(job: RunJob, data: str, dev: torch.device, result: dict | None) -> bool:
    """Whether the run is evaluated again from its ``model.pt`` (:func:`_reload`): trained as
    this job asks (:func:`_trained`), its ``checkpoint.pt`` deleted, its ``model.pt`` there."""
    return _trained(job, data, dev, result) and (job.run_dir / "model.pt").is_file() and \
        not (job.run_dir / "checkpoint.pt").exists()


def check_run_folder(job: RunJob, data: str, dev: torch.device) -> None:
    """Raise :class:`~colorlab.checkpoint.CheckpointError` if the run folder of ``job`` holds
    work the trainer would refuse to continue (a checkpoint of other settings or of other
    images than those whose :func:`~colorlab.run_state.data_fingerprint` is ``data``, or
    another run's files), :class:`~colorlab.folder_lock.FolderLocked` if another command trains
    it now, and :class:`NotADirectoryError` if a file stands where it goes: ``colorlab
    reproduce`` checks every run before it starts any, so that a refused call does no work, and
    is not counted among the reproduction's calls.

    >>> import tempfile
    >>> from colorlab.reproduce import PROFILES
    >>> with tempfile.TemporaryDirectory() as work:
    ...     job = RunJob("fruits", "l2", 0, PROFILES["ci"], work, "cpu", (), ())
    ...     job.run_dir.mkdir(parents=True)
    ...     _ = (job.run_dir / "model.pt").write_bytes(b"someone's model")
    ...     check_run_folder(job, "0123", torch.device("cpu"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    colorlab.checkpoint.CheckpointError: run folder ... holds model.pt but no checkpoint.pt of this run, ...; use a new or empty --run-dir (its work folder is reproduce's --work-dir: ...)
    """
    config, ck_path = _config(job, dev), job.run_dir / "checkpoint.pt"
    blocker = file_in_the_way(job.run_dir)
    if blocker is not None:
        raise NotADirectoryError(f"run folder {job.run_dir} cannot be made: {blocker} is a "
                                 f"file, not a folder {WORK_DIR_HINT}")
    if not job.run_dir.is_dir():
        return
    with FolderLock(job.run_dir, "run folder", job.run_dir / ".lock"):
        pass  # another command training this run now stops this one before it starts any
    if _finished(job, data, dev) is not None or _reloadable(job, data, dev, _evaluation(job)):
        return  # reused as it is, or evaluated again from model.pt: the trainer is not asked
    try:
        if ck_path.exists():
            check_resumable(load_checkpoint(ck_path, "cpu", mmap=True), config,
                            context().world_size, ck_path, data)
        else:
            refuse_foreign_files(job.run_dir, config)
    except CheckpointError as err:
        raise CheckpointError(f"{err} {WORK_DIR_HINT}") from err


def _train(job: RunJob, splits: dict, dev: torch.device) -> tuple[Trainer, list[dict], dict]:
    prof, config = job.profile, _config(job, dev)
    t0 = time.perf_counter()
    weights = torch.tensor(job.weights, dtype=torch.float64) if job.loss == "rebal" else None
    trainer = Trainer(config, splits["train"], splits["val"], job.run_dir, weights=weights,
                      device=dev, progress=job.progress)
    trainer.cuda_graphs = prof.cuda_graphs and dev.type == "cuda"
    already = (job.run_dir / "done.json").exists()
    try:
        history = trainer.fit(resume=True)
    except CheckpointError as err:  # a run of other settings or data in the work folder
        raise CheckpointError(f"{err} {WORK_DIR_HINT}") from err
    train_seconds = sum(h["seconds"] for h in history)
    return trainer, history, {
        "config": config.to_dict(), "data": trainer.data, "epochs": len(history),
        "train_seconds": train_seconds,
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


def _reload(job: RunJob, previous: dict, dev: torch.device) -> tuple:
    """A run that finished training (``previous``, its ``evaluation.json``, says so: see
    :func:`_trained`) whose ``checkpoint.pt`` was deleted: its final model (``model.pt``), its
    history, and the record of its training, as :func:`_train` returns them."""
    t0 = time.perf_counter()
    model, config = load_model(job.run_dir / "model.pt", dev)
    history = load_checkpoint(job.run_dir / "model.pt")["history"]
    if config.to_dict() != _config(job, dev).to_dict() or len(history) != config.epochs:
        raise CheckpointError(f"{job.run_dir / 'model.pt'} is not the final model its "
                              f"evaluation.json describes; delete the run folder to train it "
                              f"again {WORK_DIR_HINT}")
    record = {**previous["record"], "resumed_complete": True,
              "wall_seconds_this_call": time.perf_counter() - t0,
              "validation_seconds_this_call": 0.0, "checkpoint_seconds_this_call": 0.0}
    return model, history, record


def _best_point(job: RunJob, final_model, history: list[dict], dev) -> tuple:
    """The model of the lowest validation loss and its epoch (the final one without ``best.pt``):
    the earliest epoch of the lowest ``val_loss`` in the history, as the trainer chose it."""
    best = job.run_dir / "best.pt"
    if not best.is_file():
        return final_model, len(history)
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

    dev = torch.device(job.device)
    data = profile_dataset(job.dataset, job.profile)
    splits = data.splits(seed=0)  # the same split for every seed: per-image scores pair up
    data_fp = data_fingerprint(splits["train"])
    result = _finished(job, data_fp, dev)
    if result is not None:
        result["record"]["resumed_complete"] = True
        return result
    previous = _evaluation(job)
    if _reloadable(job, data_fp, dev, previous):
        final_model, history, record = _reload(job, previous, dev)  # evaluated again
    else:
        trainer, history, record = _train(job, splits, dev)
        final_model = trainer.model
    t0 = time.perf_counter()
    best_model, best_epoch = _best_point(job, final_model, history, dev)
    test = splits["test"]
    predictions = {point: sharded_predict_ab(model, test.images, device=dev,
                                             precision=job.profile.precision)
                   for point, model in (("final", final_model), ("best", best_model))}
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
            save_examples(final_model, test, job.run_dir / EXAMPLE_FILES[job.loss], dev)
    record["evaluate_seconds"] = time.perf_counter() - t0  # both points, and their files
    result = {"format": EVALUATION_FORMAT, "name": run_name(job.dataset, job.loss, job.seed),
              "classifier": job.classifier, "record": record, "evaluation": evaluation}
    if context().main:
        atomic_write_text(json.dumps(result), job.run_dir / "evaluation.json")
    context().barrier()  # under torchrun: rank 0's files exist when any rank goes on
    return result
