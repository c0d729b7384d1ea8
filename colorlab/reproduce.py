"""``colorlab reproduce``: the report's six runs, their evaluation and a ``results/`` folder.

For each dataset (CelebA, Fruits): a deterministic 60/20/20 split, the empirical prior of the
training split (smoothed, and the rebalancing weights), three models trained (L2, Class,
Class+rebal), then Gray, Random and the three models evaluated on the test split
(``book/07_training.ipynb`` to ``book/09_successes_failures.ipynb`` show the results).

Profiles:

* ``full``: real data (``$COLORLAB_DATA``) at 88x88, width-1 network, 100 epochs, batch 64 with the
  square-root-scaled learning rate, autocast in the device's precision (bf16 on Ampere and newer,
  fp16 with a gradient scaler on a T4 or V100: ``--precision``) and channels_last on one GPU.
  Refuses to run on a CPU. ``torch.compile`` is off by default here (``compile=True``, ``--compile``: on): it would
  compile two heads and six models, tens of seconds each, to speed up the elementwise part of
  steps of 64 images of 88x88, a small share of a step dominated by cuDNN convolutions. This
  trade-off is an estimate, not a measurement. ``--bench`` measures the compiled step at 176x176.
* ``ci``: the same code on the embedded sample images, 32x32, width 1/8, 2 epochs: ~15 s on
  2 CPU cores. Its results are labelled as such wherever they are shown.

Resumable at two levels. Within a dataset, a run whose ``done.json`` exists is not trained again
and an interrupted run resumes from its last checkpoint (``--work-dir``, default
``runs/<profile>``). Across calls, a dataset that an earlier call finished with the same code,
profile, classifier and data is kept (:class:`colorlab.results_folder.ResultsFolder`), so a call cut
off after CelebA trains only the fruits next time, even on a fresh machine without the checkpoints.
``results/`` is replaced only when every dataset is done: it is never left half-written.

``results/`` holds: ``provenance.json`` (device, torch, git commit, dataset manifest hashes, wall
time and images/s per run, the benchmark with ``--bench``), ``table1.json`` and ``table1.md``, and
per dataset ``prior.json``, ``manifest.json``, ``<run>/history.json``, ``metrics.json`` (with
cumulative error curves and per-image scores), ``examples.pt`` (logits of six test images) and PNG
figures (``fig3_successes.png``, ``fig6_<mode>.png``).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from .batches import to_lab
from .checkpoint import FolderLock, atomic_write_text
from .data import ColorizationDataset, load_images, sample_stand_in
from .distributed import context, setup, sharded_predict_ab
from .evaluate import baseline_predictions, evaluate_predictions
from .failures import save_figure_panels
from .prior import prior_from_images
from .results_folder import ResultsFolder, source_hash
from .table1 import DATASETS, RUNS, table1_markdown, table1_rows
from .train import TrainConfig, Trainer
from .train_config import device_name

__all__ = ["ReproduceProfile", "PROFILES", "RUNS", "DATASETS", "reproduce", "profile_dataset"]


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
    figure_images: int = 6
    bench_size: int = 176  # ``--bench``: the report's resolution with the width-1 network
    bench_width: float = 1.0
    precision: str = "auto"  # colorlab.precision: bf16 on capability >= 8.0, fp16 below, fp32 on CPU

    @property
    def lr(self) -> float:
        return TrainConfig.scaled_lr(self.batch_size)


PROFILES = {
    "full": ReproduceProfile("full", size=88, width=1.0, epochs=100, batch_size=64),
    "ci": ReproduceProfile("ci", size=32, width=0.125, epochs=2, batch_size=16, sample_count=96,
                           figure_images=4, bench_size=32, bench_width=0.125),
}


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def profile_dataset(dataset: str, profile: ReproduceProfile) -> ColorizationDataset:
    """The images a reproduction profile trains on (sample stand-ins in the ``ci`` profile)."""
    if profile.sample_count:
        return sample_stand_in(dataset, profile.size, profile.sample_count)
    return load_images(dataset, profile.size, fallback=False)


def _save_examples(model, test_set: ColorizationDataset, path: Path, device, n: int = 6) -> None:
    """Logits of the first ``n`` test images (float16, ~3 MB at 88x88) for the annealed-mean
    chapter, which must decode real predictions without shipping a 100 MB checkpoint."""
    from .checkpoint import atomic_save

    L, ab = to_lab(test_set.images[:n])
    with torch.no_grad():
        logits = model.eval()(L.to(device)).float().cpu()
    atomic_save({"L": L.half(), "ab": ab.half(), "logits": logits.half(),
                 "files": test_set.files[:n]}, path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _train_run(ds_name: str, loss: str, splits: dict, weights, prof: ReproduceProfile, dev,
               work: Path, progress: bool, log) -> tuple[Trainer, dict]:
    """Train (or resume, or reload) one of the three models; returns the trainer and its record."""
    # under torchrun the profile's batch is shared out: the effective batch and lr stay the same
    config = TrainConfig(loss=loss, width=prof.width, epochs=prof.epochs,
                         batch_size=prof.batch_size // context().world_size, lr=prof.lr,
                         size=prof.size,
                         compile=prof.compile and dev.type == "cuda",
                         checkpoint_every=max(1, prof.epochs // 10), precision=prof.precision)
    run_dir = work / ds_name / loss
    t0 = time.perf_counter()
    trainer = Trainer(config, splits["train"], splits["val"], run_dir,
                      weights=weights if loss == "rebal" else None, device=dev, progress=progress)
    already = (run_dir / "done.json").exists()
    history = trainer.fit(resume=True)
    wall = time.perf_counter() - t0
    train_seconds = sum(h["seconds"] for h in history)
    record = {"config": config.to_dict(), "epochs": len(history), "train_seconds": train_seconds,
              # all epochs, the first one's compilation included
              "images_per_s": sum(h["images_per_s"] * h["seconds"] for h in history)
              / max(train_seconds, 1e-9),
              # steady state: the median epoch
              "median_epoch_images_per_s": statistics.median(h["images_per_s"] for h in history),
              "wall_seconds_this_call": wall, "resumed_complete": already,
              "compiled": all(h.get("compiled", False) for h in history),
              "precision": trainer.precision}
    log(f"{ds_name}/{loss}: {'already trained' if already else 'trained'} {len(history)} epochs "
        f"in {train_seconds:.0f} s ({record['images_per_s']:.0f} images/s, median epoch "
        f"{record['median_epoch_images_per_s']:.0f}), final train loss "
        f"{history[-1]['train_loss']:.4f}")
    return trainer, record


def _reproduce_dataset(ds_name: str, data: ColorizationDataset, manifest: dict,
                       prof: ReproduceProfile, dev, work: Path, out: Path, clf, progress: bool,
                       log) -> dict:
    """Everything of one dataset into the folder ``out``; returns its record for the provenance."""
    started = time.perf_counter()
    splits = data.splits(seed=0)
    atomic_write_text(json.dumps(manifest), out / "manifest.json")
    lam = TrainConfig.lam  # the dataclass default, 0.5, as in Zhang et al.
    p, p_smooth, weights = prior_from_images(splits["train"].images, 5.0, lam)
    atomic_write_text(json.dumps({"empirical": p.tolist(), "smoothed": p_smooth.tolist(),
                                  "weights": weights.tolist(), "sigma": 5.0, "lam": lam}),
                      out / "prior.json")
    predictions = baseline_predictions(splits["test"], splits["train"])
    runs = {}
    for loss, method in RUNS.items():
        trainer, runs[f"{ds_name}/{loss}"] = _train_run(ds_name, loss, splits, weights, prof, dev,
                                                         work, progress, log)
        (out / loss).mkdir()
        shutil.copy(work / ds_name / loss / "history.json", out / loss / "history.json")
        predictions[method] = sharded_predict_ab(trainer.model, splits["test"].images, device=dev,
                                                 precision=prof.precision)
        if loss == "rebal":
            _save_examples(trainer.model, splits["test"], out / "examples.pt", dev)
    metrics = evaluate_predictions(splits["test"], predictions, p_smooth, clf)
    metrics["figures"] = save_figure_panels(out, splits["test"], predictions,
                                            metrics["Class+rebal"]["per_image_auc"],
                                            prof.figure_images)
    atomic_write_text(json.dumps(metrics), out / "metrics.json")
    return {"manifest_hash": manifest["hash"],
            "table_name": ds_name if data.source == "real" else data.name,
            "rows": table1_rows(metrics), "runs": runs,
            "dataset": {"name": data.name, "manifest_hash": manifest["hash"],
                        "source": data.source, "read": len(data), "skipped": len(data.skipped),
                        "split_sizes": {k: len(v) for k, v in splits.items()}},
            "device": device_name(dev), "torch": torch.__version__, "git_commit": _git_commit(),
            "date": _now(), "wall_seconds": time.perf_counter() - started}


def _joined(values) -> str:
    return " + ".join(dict.fromkeys(values))  # distinct, in order


def _provenance(prof: ReproduceProfile, key: dict, records: dict, bench: dict | None) -> dict:
    """The top-level ``provenance.json`` from the records of the datasets (and the benchmark)."""
    parts = list(records.values()) + ([bench] if bench else [])
    provenance = {"profile": dataclasses.asdict(prof), "classifier": key["classifier"],
                  "sources": key["sources"], "device": _joined(r["device"] for r in parts),
                  "torch": _joined(r["torch"] for r in parts),
                  "git_commit": _joined(r["git_commit"] for r in parts),
                  "date": max(r["date"] for r in parts),
                  "calls": len({r["call"] for r in parts}),
                  "datasets": {ds: r["dataset"] for ds, r in records.items()},
                  "runs": {name: run for r in records.values() for name, run in r["runs"].items()},
                  "precision": _joined(run.get("precision", "?") for r in records.values()
                                       for run in r["runs"].values()),
                  "wall_seconds": sum(r["wall_seconds"] for r in parts)}
    if bench:
        provenance["bench_train"] = bench["bench_train"]
    return provenance


def reproduce(out_dir: str | Path = "results", profile: str = "full",
              datasets: tuple[str, ...] = DATASETS,
              work_dir: str | Path | None = None, device: str | torch.device | None = None,
              classifier: str | None = "efficientnet_lite0", progress: bool = True,
              epochs: int | None = None, bench: bool = False, compile: bool | None = None,
              force: bool = False, log=print, precision: str | None = None) -> dict:
    """Train and evaluate everything, then replace ``out_dir`` in one step; returns the provenance.

    ``epochs``, ``compile`` and ``precision`` (:mod:`colorlab.precision`) override the profile's. ``bench=True`` also runs
    :func:`colorlab.train_bench.bench_train` (``full``: width 1, 176x176) and records it in the
    provenance. Datasets (and the benchmark) that an earlier call, interrupted or complete,
    finished with the same code, profile, classifier and data are kept.

    ``out_dir`` is locked while the call runs (a second call on it stops at once, naming this
    one's PID), and a larger reproduction already there (a recorded GPU run, say) is never
    replaced by a smaller one unless ``force=True``: see :class:`colorlab.results_folder.ResultsFolder`.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    prof = PROFILES[profile]
    if epochs is not None:
        prof = dataclasses.replace(prof, epochs=epochs)
    if compile is not None:
        prof = dataclasses.replace(prof, compile=bool(compile))
    if precision is not None:
        prof = dataclasses.replace(prof, precision=precision)
    ctx = setup(device)  # under torchrun: every rank trains, rank 0 writes (colorlab.distributed)
    dev = ctx.device(device)
    if ctx.active and (bench or prof.batch_size % ctx.world_size):
        raise ValueError(f"under torchrun the profile's batch of {prof.batch_size} is shared by "
                         f"{ctx.world_size} processes: it must divide evenly, and --bench runs "
                         f"without torchrun")
    if not ctx.main:  # the other ranks train along, write a scratch copy and discard it
        out_dir, classifier = Path(tempfile.mkdtemp(prefix="colorlab-rank-")) / "results", None
        log, progress = (lambda *args: None), False
    if profile == "full" and dev.type != "cuda":
        raise RuntimeError("the full reproduction trains six width-1 networks for 100 epochs and "
                           "needs a CUDA GPU (in Colab: Runtime > Change runtime type > GPU); use "
                           "--profile ci for a small CPU run of the same code")
    datasets = tuple(datasets)
    if not datasets or any(ds not in DATASETS for ds in datasets):
        raise ValueError(f"datasets must be among {DATASETS}, got {datasets!r}")
    work = Path(work_dir) if work_dir is not None else Path("runs") / profile
    key = {"profile": dataclasses.asdict(prof), "classifier": classifier, "sources": source_hash()}
    with FolderLock(out_dir, "results folder"):
        items = list(datasets) + (["bench"] if bench else [])
        folder = ResultsFolder(out_dir, key, items, force=force)
        return _reproduce_into(folder, prof, key, datasets, dev, work, classifier, progress, bench,
                               log, ctx)


def _reproduce_into(folder: ResultsFolder, prof: ReproduceProfile, key: dict, datasets: tuple,
                    dev, work: Path, classifier: str | None, progress: bool, bench: bool,
                    log, ctx) -> dict:
    """The body of :func:`reproduce`, with ``folder`` locked."""
    call, clf = _now(), None
    if bench:
        if folder.kept("bench") is None:
            from .train_bench import bench_train

            t0 = time.perf_counter()
            result = bench_train(size=prof.bench_size, width=prof.bench_width, device=dev,
                                 precision=prof.precision)
            folder.commit_bench(result, {"device": device_name(dev), "torch": torch.__version__,
                                         "git_commit": _git_commit(), "date": _now(),
                                         "wall_seconds": time.perf_counter() - t0, "call": call})
        from .train_bench import format_train_bench

        log(format_train_bench(folder.kept("bench")["bench_train"]))
    records = {}
    for ds_name in datasets:
        data = profile_dataset(ds_name, prof)
        log(data.summary())
        manifest = data.manifest(seed=0)
        records[ds_name] = ctx.broadcast(folder.kept(ds_name, manifest["hash"]))  # rank 0's
        if records[ds_name] is not None:
            log(f"{ds_name}: kept, finished by an earlier call ({records[ds_name]['date']})")
            continue
        if classifier and clf is None:
            from .classifier import load_classifier

            clf = load_classifier(classifier, dev)
        staged = folder.stage(ds_name)
        try:
            record = _reproduce_dataset(ds_name, data, manifest, prof, dev, work, staged, clf,
                                        progress, log)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        folder.commit(ds_name, staged, {**record, "call": call})
        records[ds_name] = folder.kept(ds_name, record["manifest_hash"])
    provenance = _provenance(prof, key, records, folder.kept("bench") if bench else None)
    table = {r["table_name"]: r["rows"] for r in records.values()}
    items = list(datasets) + (["bench"] if bench else [])
    if not ctx.main:
        shutil.rmtree(folder.path.parent, ignore_errors=True)
        return provenance
    if folder.finish(items, provenance, {"table1.json": json.dumps(table, indent=1),
                                         "table1.md": table1_markdown(table)}):
        log(f"results written to {folder.path} ({provenance['wall_seconds']:.0f} s of work in "
            f"{provenance['calls']} call(s))")
        return provenance
    log(f"{folder.path} already holds this reproduction: nothing to do")
    return json.loads((folder.path / "provenance.json").read_text())
