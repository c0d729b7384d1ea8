"""One data set's part of ``results/`` and the provenance of a reproduction
(:func:`colorlab.reproduce.reproduce`; the book reads them back with :mod:`colorlab.results`).

When every run of a data set is done, :func:`finish_dataset` writes its folder: the manifest (file
names and hashes), the prior and rebalancing weights, each run's ``history.json``, ``metrics.json``
(Gray, Random, the ground truth and the three methods, every seed at its final and best epochs)
and the figures. :func:`provenance` then sums up the data sets and the calls that worked on them
(device, torch, commit, wall time). :class:`colorlab.results_folder.ResultsFolder` decides where
and when these files land; this module decides what they hold.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .checkpoint import atomic_write_text
from .config import device_name
from .data import ColorizationDataset
from .evaluate import baseline_predictions, evaluate_predictions
from .failure_modes import save_figure_panels
from .figures import save_saturation_figure
from .report import EXAMPLE_FILES, RUNS, table1_rows, table1_seed_rows
from .runs import SEED_MEASURES
from .train import TrainConfig

if TYPE_CHECKING:
    from .reproduce import ReproduceProfile

__all__ = ["DatasetWork", "evaluate_baselines", "finish_dataset", "provenance", "git_commit",
           "utc_now"]


def git_commit() -> str:
    """The commit of this checkout (``$COLORLAB_GIT_COMMIT`` when set: a copy whose ``.git`` is
    stale, as on a lent GPU machine, cannot tell).

    >>> isinstance(git_commit(), str)
    True
    """
    if os.environ.get("COLORLAB_GIT_COMMIT"):
        return os.environ["COLORLAB_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def utc_now() -> str:
    """The time now, in UTC, as ISO 8601 to the second (the provenance's dates).

    >>> utc_now().endswith("+00:00")
    True
    """
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class DatasetWork:
    """A dataset being reproduced in this call: its data, split, prior and finished runs."""

    data: ColorizationDataset
    splits: dict
    manifest: dict
    prior: tuple  # (empirical, smoothed, weights)
    results: dict = dataclasses.field(default_factory=dict)  # (loss, seed) -> worker result
    baselines: dict = dataclasses.field(default_factory=dict)  # Gray, Random: test-split ab
    baseline_metrics: dict = dataclasses.field(default_factory=dict)  # and the ground truth's


def evaluate_baselines(ds: DatasetWork, clf, dev) -> None:
    """Gray, Random and the ground truth of one data set, measured before its runs start: they
    need no trained model, and the GPU is then free (afterwards it is shared with the runs of
    the next data set, and the data set's last step waits for it)."""
    splits = ds.splits
    ds.baselines = baseline_predictions(splits["test"], splits["train"])
    ds.baseline_metrics = evaluate_predictions(splits["test"], ds.baselines, ds.prior[1], clf,
                                               device=dev)


def finish_dataset(ds_name: str, ds: DatasetWork, prof: ReproduceProfile, work: Path, out: Path,
                    dev, started: float, log) -> dict:
    """Everything of one dataset into the folder ``out`` once its runs are done; returns its
    record for the provenance."""
    splits, (p, p_smooth, weights) = ds.splits, ds.prior
    atomic_write_text(json.dumps(ds.manifest), out / "manifest.json")
    atomic_write_text(json.dumps({"empirical": p.tolist(), "smoothed": p_smooth.tolist(),
                                  "weights": weights.tolist(), "sigma": 5.0,
                                  "lam": TrainConfig.lam}), out / "prior.json")
    predictions, seeds = dict(ds.baselines), {}
    for loss, method in RUNS.items():
        (out / loss).mkdir()
        for seed in range(prof.seeds):
            run_dir = work / ds_name / loss / f"seed{seed}"
            suffix = "" if seed == 0 else f"-seed{seed}"
            shutil.copy(run_dir / "history.json", out / loss / f"history{suffix}.json")
            for point, entry in ds.results[loss, seed]["evaluation"].items():
                kept = {k: v for k, v in entry.items() if k in (*SEED_MEASURES, "epoch", "val_loss")}
                seeds.setdefault(method, {}).setdefault(point, []).append(kept)
        seed0 = work / ds_name / loss / "seed0"
        predictions[method] = torch.load(seed0 / "test_ab.pt", weights_only=True).float()
        if loss in EXAMPLE_FILES:
            shutil.copy(seed0 / EXAMPLE_FILES[loss], out / EXAMPLE_FILES[loss])
    # the baselines and the ground truth (measured before the runs); the trained methods' entries
    # are their seed-0 final evaluations, measured by their runs (colorlab.runs)
    metrics = dict(ds.baseline_metrics)
    for loss, method in RUNS.items():
        entry = ds.results[loss, 0]["evaluation"]["final"]
        metrics[method] = {k: v for k, v in entry.items() if k not in ("epoch", "val_loss")}
    metrics["seeds"] = seeds  # method -> point -> one entry per seed (colorlab.runs)
    metrics["figures"] = save_figure_panels(out, splits["test"], predictions,
                                            metrics["Class+rebal"]["per_image_auc"],
                                            prof.figure_images)
    metrics["figures"]["saturation"] = save_saturation_figure(metrics, out / "fig_saturation.png")
    atomic_write_text(json.dumps(metrics), out / "metrics.json")
    runs = {r["name"]: r["record"] for r in ds.results.values()}
    for (loss, seed), r in ds.results.items():
        log(f"{r['name']}: best validation loss at epoch "
            f"{r['evaluation']['best']['epoch']}; AuC {r['evaluation']['final']['auc']:.2f} "
            f"(epoch {prof.epochs}), {r['evaluation']['best']['auc']:.2f} (best)")
    data = ds.data
    return {"manifest_hash": ds.manifest["hash"],
            "table_name": ds_name if data.source == "real" else data.name,
            "rows": table1_rows(metrics), "seed_rows": table1_seed_rows(metrics), "runs": runs,
            "dataset": {"name": data.name, "manifest_hash": ds.manifest["hash"],
                        "source": data.source, "read": len(data), "skipped": len(data.skipped),
                        "split_sizes": {k: len(v) for k, v in splits.items()}},
            "device": device_name(dev),
            "torch": torch.__version__, "git_commit": git_commit(),
            "date": utc_now(), "wall_seconds": time.perf_counter() - started}


def _joined(values) -> str:
    """The distinct ``values``, in order, joined by " + " (several devices, say).

    >>> _joined(["H200", "H200", "H100"])
    'H200 + H100'
    """
    return " + ".join(dict.fromkeys(values))


def provenance(prof: ReproduceProfile, key: dict, records: dict, bench: dict | None,
                calls: list[dict]) -> dict:
    """The top-level ``provenance.json`` from the records of the datasets (and the benchmark)
    and the ``calls`` that worked on them (:meth:`ResultsFolder.calls`: a call cut off before it
    finished anything counts too, its runs being kept for the next): ``call_log`` lists them,
    ``call_wall_seconds`` gives each one's wall time and ``wall_seconds`` their sum."""
    parts = list(records.values()) + ([bench] if bench else []) + calls
    provenance = {"profile": prof.record(), "classifier": key["classifier"],
                  "sources": key["sources"],
                  **{field: _joined(r[field] for r in parts if r.get(field))
                     for field in ("device", "torch", "git_commit")},
                  "date": max(r["date"] for r in parts if r.get("date")),
                  "calls": len(calls),
                  "call_wall_seconds": {c["call"]: c["wall_seconds"] for c in calls},
                  "call_log": calls,
                  "datasets": {ds: r["dataset"] for ds, r in records.items()},
                  "runs": {name: run for r in records.values() for name, run in r["runs"].items()},
                  "precision": _joined(run.get("precision", "?") for r in records.values()
                                       for run in r["runs"].values()),
                  "workers": max((int(r.get("workers", 1)) for r in records.values()),
                                 default=1),  # runs at a time, at most
                  "mps": any(r.get("mps", False) for r in records.values()),
                  "wall_seconds": round(sum(c["wall_seconds"] for c in calls), 1)}
    if bench:
        provenance["bench_train"] = bench["bench_train"]
    return provenance
