"""``colorlab reproduce``: the report's six configurations (three seeds each in the full profile),
their evaluation and a ``results/`` folder.

For each dataset (CelebA, Fruits): a deterministic 60/20/20 split, the empirical prior of the
training split (smoothed, and the rebalancing weights), Gray, Random and the ground truth
evaluated on the test split before any run starts, then three models trained (L2, Class,
Class+rebal) per seed, each evaluated by its run at its final and best epochs
(``book/07_training.ipynb`` to ``book/09_successes_failures.ipynb`` show the results).

Profiles:

* ``full``: real data (``$COLORLAB_DATA``) at 88x88, width-1 network, 100 epochs, batch 64 with the
  square-root-scaled learning rate, autocast in the device's precision (bf16 on Ampere and newer,
  fp16 with a gradient scaler on a T4 or V100: ``--precision``) and channels_last on one GPU.
  Refuses to run on a CPU. ``torch.compile`` is off by default here (``compile=True``,
  ``--compile``: on): it would compile two heads and six models, tens of seconds each, to speed
  up the elementwise part of steps of 64 images of 88x88, a small share of a step dominated by
  cuDNN convolutions. At 176x176 the benchmark recorded on an NVIDIA H200 in November 2026 found
  a compiled step slower with one process and faster with four, and at 88x88 compile was not
  measured (chapter 7 shows the records of the run in ``results/``). ``--bench`` measures the
  compiled step at 176x176. Recording each step as a CUDA graph (``cuda_graphs=True``,
  ``--cuda-graphs``: :mod:`colorlab.step_graph`) is off by default too, until a benchmark on the
  device has measured it against today's step.
* ``ci``: the same code on the embedded sample images, 32x32, width 1/8, 2 epochs: ~15 s on
  2 CPU cores. Its results are labelled as such wherever they are shown.

Resumable at two levels. Within a dataset, a run whose ``done.json`` exists is not trained again
and an interrupted run resumes from its last checkpoint (``--work-dir``, default
``runs/<profile>``). Every run folder is checked before any work starts: one that holds another
configuration's or other images' run stops the call at once, and a call stopped there is no call
of the reproduction. Across calls, a dataset that an earlier call finished with the same code,
profile, classifier and data (file names and pixels) is kept (:class:`colorlab.results_folder.ResultsFolder`), so a call cut
off after CelebA trains only the fruits next time, even on a fresh machine without the checkpoints.
``results/`` is replaced only when every dataset is done: it is never left half-written.

``results/`` holds: ``provenance.json`` (device, torch, git commit, dataset manifest hashes, wall
time and images/s per run, every call that worked on the reproduction with its wall time in
``call_log``, including one cut off before it finished a dataset, the benchmark with
``--bench``), ``table1.json`` and ``table1.md``, and per dataset ``prior.json``,
``manifest.json``, ``<run>/history.json``, ``metrics.json`` (with cumulative error curves and
per-image scores), ``examples.pt`` (logits of four test images) and PNG figures
(``fig3_successes.png``, ``fig6_<mode>.png``): :mod:`colorlab.dataset_results` writes them, and
:class:`colorlab.results_folder.ResultsFolder` decides where and when they land.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ._validation import check_positive_int
from .bench import bench_train, format_train_bench
from .folder_lock import FolderLock
from .config import device_name
from .data import ColorizationDataset, load_images, sample_stand_in
from .dataset_results import (DatasetWork, evaluate_baselines, finish_dataset, git_commit,
                              provenance, utc_now)
from .distributed import setup
from .evaluate import load_classifier
from .prior import prior_from_images
from .report import DATASETS, RUNS, table1_markdown
from .results_folder import ResultsFolder
from .run_state import data_fingerprint
from .runs import RunJob, check_run_folder, train_and_evaluate
from .source_code import source_hash
from .train import TrainConfig
from .worker_pool import default_workers, mps_active, run_jobs

__all__ = ["ReproduceProfile", "PROFILES", "RUNS", "DATASETS", "reproduce", "reproduction_key",
           "profile_dataset"]


@dataclasses.dataclass(frozen=True)
class ReproduceProfile:
    """Sizes of a reproduction."""

    name: str
    size: int
    width: float
    epochs: int
    batch_size: int
    sample_count: int = 0  # > 0: use this many sample images instead of the real data
    compile: bool = False
    cuda_graphs: bool = False  # each run's step recorded as a CUDA graph (colorlab.step_graph)
    figure_images: int = 6
    bench_size: int = 176  # ``--bench``: the report's resolution with the width-1 network
    bench_width: float = 1.0
    precision: str = "auto"  # colorlab.config: bf16 on capability >= 8.0, fp16 below, fp32 on CPU
    seeds: int = 3  # each configuration is trained with seeds 0..seeds-1 (Table 1's mean ± sd)

    @property
    def lr(self) -> float:
        return TrainConfig.scaled_lr(self.batch_size)

    def record(self) -> dict:
        """The profile as the provenance records it, without the settings that change only how
        steps are launched (``cuda_graphs``: each run's record says whether it replayed a graph).
        It also decides whether an earlier call's finished datasets are kept
        (:class:`colorlab.results_folder.ResultsFolder`): a call that launches its steps another
        way continues the same reproduction.

        >>> record = PROFILES["full"].record()
        >>> "cuda_graphs" in record, record["epochs"], record["seeds"]
        (False, 100, 3)
        """
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "cuda_graphs"}


PROFILES = {
    "full": ReproduceProfile("full", size=88, width=1.0, epochs=100, batch_size=64),
    "ci": ReproduceProfile("ci", size=32, width=0.125, epochs=2, batch_size=16, sample_count=96,
                           figure_images=4, bench_size=32, bench_width=0.125, seeds=2),
}


def profile_dataset(dataset: str, profile: ReproduceProfile) -> ColorizationDataset:
    """The images a reproduction profile trains on (sample stand-ins in the ``ci`` profile)."""
    if profile.sample_count:
        return sample_stand_in(dataset, profile.size, profile.sample_count)
    return load_images(dataset, profile.size, fallback=False)


def _jobs(todo: dict, prof: ReproduceProfile, dev, work: Path, classifier, progress: bool,
          workers: int) -> list[RunJob]:
    """The runs still to do, longest first (the larger dataset), seed-major within a dataset
    (progress bars only when they run one at a time, here)."""
    jobs = []
    for ds_name, ds in sorted(todo.items(), key=lambda item: -len(item[1].splits["train"])):
        for seed in range(prof.seeds):
            for loss in RUNS:
                jobs.append(RunJob(ds_name, loss, seed, prof, str(work), str(dev),
                                   tuple(ds.prior[1].tolist()), tuple(ds.prior[2].tolist()),
                                   classifier, progress and workers == 1))
    return jobs


def _overheads(record: dict) -> str:
    """Where a run's wall time went besides its steps, in this call (for the log).

    >>> _overheads({"wall_seconds_this_call": 350.2, "validation_seconds_this_call": 31.0,
    ...             "checkpoint_seconds_this_call": 12.4})
    '; this call: 350 s of wall time, 31 s validating, 12 s writing checkpoints'
    """
    if "validation_seconds_this_call" not in record:
        return ""
    return (f"; this call: {record['wall_seconds_this_call']:.0f} s of wall time, "
            f"{record['validation_seconds_this_call']:.0f} s validating, "
            f"{record['checkpoint_seconds_this_call']:.0f} s writing checkpoints")


def reproduce(out_dir: str | Path = "results", profile: str = "full",
              datasets: tuple[str, ...] = DATASETS,
              work_dir: str | Path | None = None, device: str | torch.device | None = None,
              classifier: str | None = "efficientnet_lite0", progress: bool = True,
              epochs: int | None = None, bench: bool = False, compile: bool | None = None,
              cuda_graphs: bool | None = None,
              force: bool = False, log=print, precision: str | None = None,
              seeds: int | None = None, workers: int | None = None) -> dict:
    """Train and evaluate everything, then replace ``out_dir`` in one step; returns the provenance.

    ``epochs``, ``seeds``, ``compile``, ``cuda_graphs`` and ``precision``
    (:mod:`colorlab.config`) override the profile's. ``workers`` runs train at once, each in its
    own process (:mod:`colorlab.worker_pool`; default: 1 on a CPU, up to 9 on a GPU). ``bench=True``
    also runs :func:`colorlab.bench.bench_train` (``full``: width 1, 176x176) and records it in the
    provenance. Datasets (and the benchmark) that an earlier call, interrupted or complete,
    finished with the same code, profile, classifier and data are kept; so are finished runs in
    ``work_dir``.

    ``out_dir`` is locked while the call runs (a second call on it stops at once, naming this
    one's PID), and a larger reproduction already there (a recorded GPU run, say) is never
    replaced by a smaller one unless ``force=True``: see :class:`colorlab.results_folder.ResultsFolder`.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    prof = PROFILES[profile]
    overrides = {"epochs": epochs, "seeds": seeds, "precision": precision,
                 "compile": None if compile is None else bool(compile),
                 "cuda_graphs": None if cuda_graphs is None else bool(cuda_graphs)}
    for name, value in overrides.items():
        if value is not None:
            if name in ("epochs", "seeds"):
                check_positive_int(value, name)
            prof = dataclasses.replace(prof, **{name: value})
    ctx = setup(device)  # under torchrun: every rank trains, rank 0 writes (colorlab.distributed)
    dev = ctx.device(device)
    if ctx.active and (bench or prof.batch_size % ctx.world_size or (workers or 1) > 1):
        raise ValueError(f"under torchrun the profile's batch of {prof.batch_size} is shared by "
                         f"{ctx.world_size} processes: it must divide evenly, and --bench and "
                         f"--workers run without torchrun")
    if not ctx.main:  # the other ranks train along, write a scratch copy and discard it
        out_dir, classifier = Path(tempfile.mkdtemp(prefix="colorlab-rank-")) / "results", None
        log, progress = (lambda *args: None), False
    if profile == "full" and dev.type != "cuda":
        raise RuntimeError("the full reproduction trains 18 width-1 networks for 100 epochs and "
                           "needs a CUDA GPU (in Colab: Runtime > Change runtime type > GPU); use "
                           "--profile ci for a small CPU run of the same code")
    datasets = tuple(datasets)
    if not datasets or any(ds not in DATASETS for ds in datasets):
        raise ValueError(f"datasets must be among {DATASETS}, got {datasets!r}")
    if workers is not None:
        check_positive_int(workers, "workers")
    work = Path(work_dir) if work_dir is not None else Path("runs") / profile
    if work.absolute().is_relative_to(Path(out_dir).absolute()):
        raise ValueError(f"the work folder {work} (--work-dir) lies inside the results folder "
                         f"{out_dir} (--out), which is replaced as a whole when the reproduction "
                         f"finishes: its trained runs would be deleted; choose a --work-dir "
                         f"outside it, or another --out")
    key = reproduction_key(prof, classifier)
    with FolderLock(out_dir, "results folder"):
        items = list(datasets) + (["bench"] if bench else [])
        folder = ResultsFolder(out_dir, key, items, force=force)
        return _reproduce_into(folder, prof, key, datasets, dev, work, classifier, progress, bench,
                               log, ctx, workers)


def reproduction_key(prof: ReproduceProfile, classifier: str | None) -> dict:
    """What must match for finished work to be kept (:class:`ResultsFolder`), and what the
    provenance records of it: the profile, the classifier and :func:`source_hash` of the code.

    >>> sorted(reproduction_key(PROFILES["ci"], None))
    ['classifier', 'profile', 'sources']
    """
    return {"profile": prof.record(), "classifier": classifier, "sources": source_hash()}


def _reproduce_into(folder: ResultsFolder, prof: ReproduceProfile, key: dict, datasets: tuple,
                    dev, work: Path, classifier: str | None, progress: bool, bench: bool,
                    log, ctx, workers: int | None) -> dict:
    """The body of :func:`reproduce`, with ``folder`` locked: this call is recorded in its
    ``calls.json`` as it goes, also when it is cut off."""
    call = utc_now()
    if ctx.main:  # (the other ranks under torchrun write a scratch copy, discarded at the end)
        folder.begin_call({"call": call, "date": call, "device": device_name(dev),
                           "torch": torch.__version__, "git_commit": git_commit()})
    try:
        return _reproduce_steps(folder, prof, key, datasets, dev, work, classifier, progress,
                                bench, log, ctx, workers, call)
    finally:
        folder.end_call()  # its wall time, also after an exception or an interrupt


def _reproduce_steps(folder: ResultsFolder, prof: ReproduceProfile, key: dict, datasets: tuple,
                     dev, work: Path, classifier: str | None, progress: bool, bench: bool,
                     log, ctx, workers: int | None, call: str) -> dict:
    """What :func:`_reproduce_into` does, step by step: the data, the check of every run
    folder, the benchmark, the baselines, the runs, each data set's folder, the tables and the
    provenance."""
    clf, started = None, time.perf_counter()
    records, todo, pixels = {}, {}, {}
    for ds_name in datasets:
        data = profile_dataset(ds_name, prof)
        log(data.summary())
        manifest = data.manifest(seed=0)
        # an earlier call's finished data set is kept only for the same names and pixels
        pixels[ds_name] = data_fingerprint(data)
        records[ds_name] = ctx.broadcast(folder.kept(ds_name, manifest["hash"],
                                                     pixels[ds_name]))  # rank 0's
        if records[ds_name] is not None:
            log(f"{ds_name}: kept, finished by an earlier call ({records[ds_name]['date']})")
            continue
        splits = data.splits(seed=0)
        todo[ds_name] = DatasetWork(data, splits, manifest,
                                 prior_from_images(splits["train"].images, 5.0, TrainConfig.lam))
    if todo:
        count = prof.seeds * len(RUNS) * len(todo)
        workers = 1 if ctx.active else (workers or default_workers(dev, count))
        jobs = _jobs(todo, prof, dev, work, classifier, progress, workers)
        # every run folder is checked before any work: a refused call does none (and is no
        # call of the reproduction)
        fingerprints = {name: data_fingerprint(ds.splits["train"]) for name, ds in todo.items()}
        for job in jobs:
            check_run_folder(job, fingerprints[job.dataset], dev)
    if bench:  # after the checks: a refused call measures nothing either
        if folder.kept("bench") is None:
            t0 = time.perf_counter()
            result = bench_train(size=prof.bench_size, width=prof.bench_width, device=dev,
                                 precision=prof.precision)
            folder.commit_bench(result, {"device": device_name(dev), "torch": torch.__version__,
                                         "git_commit": git_commit(), "date": utc_now(),
                                         "wall_seconds": time.perf_counter() - t0,
                                         "call": call})
            folder.tick("bench")
        log(format_train_bench(folder.kept("bench")["bench_train"]))
    if todo:
        if classifier:
            clf = load_classifier(classifier, dev)
        for ds_name, ds in todo.items():
            t0 = time.perf_counter()
            evaluate_baselines(ds, clf, dev)
            log(f"{ds_name}: Gray, Random and the ground truth evaluated in "
                f"{time.perf_counter() - t0:.0f} s")
        mps = dev.type == "cuda" and mps_active()
        log(f"{len(jobs)} runs ({prof.seeds} seed(s) x {len(RUNS)} losses x {len(todo)} "
            f"dataset(s)), {workers} at a time" + (" (MPS)" if mps else ""))
        folder.tick()  # the runs start: from here on this call works on the reproduction
        for job, result in run_jobs(train_and_evaluate, jobs, workers):
            ds = todo[job.dataset]
            ds.results[job.loss, job.seed] = result
            folder.tick()
            r = result["record"]
            log(f"{result['name']}: {'already trained' if r['resumed_complete'] else 'trained'} "
                f"{r['epochs']} epochs in {r['train_seconds']:.0f} s "
                f"({r['images_per_s']:.0f} images/s, median epoch "
                f"{r['median_epoch_images_per_s']:.0f}), final train loss "
                f"{r['final_train_loss']:.4f}"
                + (f"; evaluated in {r['evaluate_seconds']:.0f} s" if "evaluate_seconds" in r
                   else "") + _overheads(r))
            if len(ds.results) < prof.seeds * len(RUNS):
                continue
            staged, t0 = folder.stage(job.dataset), time.perf_counter()
            try:
                record = finish_dataset(job.dataset, ds, prof, work, staged, dev, started,
                                         log)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            log(f"{job.dataset}: figures and tables in {time.perf_counter() - t0:.0f} s")
            folder.commit(job.dataset, staged, {**record, "data": pixels[job.dataset],
                                                "call": call, "workers": workers, "mps": mps})
            records[job.dataset] = folder.kept(job.dataset, record["manifest_hash"],
                                               pixels[job.dataset])
            folder.tick(job.dataset)
    items = list(datasets) + (["bench"] if bench else [])
    folder.tick()
    summary = provenance(prof, key, records, folder.kept("bench") if bench else None,
                         folder.calls(items))
    table = {r["table_name"]: r["rows"] for r in records.values()}
    seed_table = {r["table_name"]: r["seed_rows"] for r in records.values() if "seed_rows" in r}
    if not ctx.main:
        shutil.rmtree(folder.path.parent, ignore_errors=True)
        return summary
    if folder.finish(items, summary, {"table1.json": json.dumps(table, indent=1),
                                      "table1_seeds.json": json.dumps(seed_table, indent=1),
                                      "table1.md": table1_markdown(table, seed_table)}):
        log(f"results written to {folder.path} ({summary['wall_seconds']:.0f} s of work in "
            f"{summary['calls']} call(s))")
        return summary
    log(f"{folder.path} already holds this reproduction: nothing to do")
    return json.loads((folder.path / "provenance.json").read_text())
