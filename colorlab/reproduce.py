"""``colorlab reproduce``: the report's six runs, their evaluation and a ``results/`` folder.

For each dataset (CelebA, Fruits): a deterministic 60/20/20 split, the empirical prior of the
training split (smoothed, and the rebalancing weights), three models trained (L2, Class,
Class+rebal), then Gray, Random and the three models evaluated on the test split.

Profiles:

* ``full``: real data (``$COLORLAB_DATA``) at 88x88, width-1 network, 100 epochs, batch 64 with the
  square-root-scaled learning rate, bf16 + ``torch.compile`` on one GPU. Refuses to run on a CPU.
* ``ci``: the same code on the embedded sample images, 32x32, width 1/8, 2 epochs: ~1 minute on
  2 CPU cores. Its results are labelled as such wherever they are shown.

Resumable: a run whose ``done.json`` exists is skipped, an interrupted run resumes from its last
checkpoint (``--work-dir``, default ``runs/<profile>``). Results are written to a temporary folder
and moved into place at the end, so ``results/`` is never left half-written.

``results/`` holds: ``provenance.json`` (device, torch, git commit, dataset manifest hashes, wall
time and images/s per run), ``table1.json`` and ``table1.md``, and per dataset ``prior.json``,
``manifest.json``, ``<run>/history.json``, ``metrics.json`` (with cumulative error curves and
per-image scores) and a few PNG figures (``fig3_successes.png``, ``fig6_<mode>.png``).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from .batches import to_lab
from .checkpoint import atomic_write_text
from .data import ColorizationDataset, load_images, sample_stand_in
from .evaluate import baseline_predictions, evaluate_predictions, predict_ab
from .failures import FAILURE_MODES, image_scores, select
from .prior import prior_from_images
from .train import TrainConfig, Trainer, default_device

__all__ = ["ReproduceProfile", "PROFILES", "RUNS", "REPORT_TABLE1", "reproduce", "table1_markdown",
           "profile_dataset"]

RUNS = {"l2": "L2", "ce": "Class", "rebal": "Class+rebal"}
METHODS = ("Gray", "Random", "L2", "Class", "Class+rebal")

#: Table 1 of the report (AuC %, and VGG16 top-1 % on Fruits, ground truth 44.0)
REPORT_TABLE1 = {
    "celeba": {"auc": {"Gray": 88.8, "Random": 87.4, "L2": 91.5, "Class": 92.2, "Class+rebal": 92.3}},
    "fruits": {"auc": {"Gray": 76.9, "Random": 74.1, "L2": 76.9, "Class": 84.5, "Class+rebal": 84.3},
               "classifier_accuracy": {"Ground truth": 44.0, "Gray": 33.2, "Random": 28.2,
                                       "L2": 31.7, "Class": 35.9, "Class+rebal": 39.8}},
}


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

    @property
    def lr(self) -> float:
        return TrainConfig.scaled_lr(self.batch_size)


PROFILES = {
    "full": ReproduceProfile("full", size=88, width=1.0, epochs=100, batch_size=64, compile=True),
    "ci": ReproduceProfile("ci", size=32, width=0.125, epochs=2, batch_size=16, sample_count=96,
                           figure_images=4),
}


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def profile_dataset(dataset: str, profile: ReproduceProfile) -> ColorizationDataset:
    """The images a reproduction profile trains on (sample stand-ins in the ``ci`` profile)."""
    if profile.sample_count:
        return sample_stand_in(dataset, profile.size, profile.sample_count)
    return load_images(dataset, profile.size, fallback=False)


def _figure(path: Path, L, columns: dict, titles: list[str]) -> None:
    """Save one panel. A bare ``Figure`` (no pyplot) leaves the caller's matplotlib backend alone:
    switching it to Agg here would silence every later plot of a notebook that calls reproduce."""
    from matplotlib.figure import Figure

    from .plots import show_colorizations

    show_colorizations(L, columns, titles, size=1.6, figure=Figure()).savefig(path, dpi=100)


def _figures(out: Path, test_set: ColorizationDataset, predictions: dict, metrics: dict,
             n: int) -> dict:
    """Fig. 3 and Fig. 6 panels chosen by the measured criteria of :mod:`colorlab.failures`."""
    L, true_ab = to_lab(test_set.images)
    model = "Class+rebal"
    scores = image_scores(L, true_ab, predictions[model])
    per_image_auc = torch.tensor(metrics[model]["per_image_auc"])
    colourful = scores["chroma"] > scores["chroma"].median()
    chosen = {"successes": select(per_image_auc, n, among=colourful)}
    used = set(chosen["successes"])
    for mode in FAILURE_MODES:
        chosen[mode] = select(scores[mode], min(n, 3), exclude=used)
        used |= set(chosen[mode])
    for key, idx in chosen.items():
        columns = {"Ground truth": true_ab[idx], **{m: predictions[m][idx] for m in
                                                    ("L2", "Class", "Class+rebal")}}
        titles = [test_set.files[i].rsplit("/", 1)[-1] for i in idx]
        name = "fig3_successes.png" if key == "successes" else f"fig6_{key}.png"
        _figure(out / name, L[idx], columns, titles)
    return {"model": model, "chosen": {k: [test_set.files[i] for i in v] for k, v in chosen.items()},
            "scores": {k: v.tolist() for k, v in scores.items()}}


def _save_examples(model, test_set: ColorizationDataset, path: Path, device, n: int = 6) -> None:
    """Logits of the first ``n`` test images (float16, ~3 MB at 88x88) for the annealed-mean
    chapter, which must decode real predictions without shipping a 100 MB checkpoint."""
    from .checkpoint import atomic_save

    L, ab = to_lab(test_set.images[:n])
    with torch.no_grad():
        logits = model.eval()(L.to(device)).float().cpu()
    atomic_save({"L": L.half(), "ab": ab.half(), "logits": logits.half(),
                 "files": test_set.files[:n]}, path)


def table1_markdown(table: dict) -> str:
    """Table 1 as Markdown: measured beside the report's numbers (real data only).

    >>> print(table1_markdown({"celeba": {"auc": {"Gray": 90.0}}}).splitlines()[2])
    | celeba | auc |  | 90.0 (88.8) |  (87.4) |  (91.5) |  (92.2) |  (92.3) |
    """
    lines = ["| dataset | metric | " + " | ".join(("Ground truth",) + METHODS) + " |",
             "| --- | --- | " + " | ".join(["---"] * (len(METHODS) + 1)) + " |"]
    for ds, rows in table.items():
        for metric, values in rows.items():
            report = REPORT_TABLE1.get(ds, {}).get(metric, {})  # real data only, not stand-ins
            cells = []
            for m in ("Ground truth",) + METHODS:
                v, r = values.get(m), report.get(m)
                cell = "" if v is None else f"{v:.1f}"
                if r is not None:
                    cell += f" ({r:.1f})"
                cells.append(cell)
            lines.append(f"| {ds} | {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Measured values; the report's in parentheses (its classifier was VGG16).")
    return "\n".join(lines) + "\n"


def reproduce(out_dir: str | Path = "results", profile: str = "full",
              datasets: tuple[str, ...] = ("celeba", "fruits"),
              work_dir: str | Path | None = None, device: str | torch.device | None = None,
              classifier: str | None = "efficientnet_lite0", progress: bool = True,
              epochs: int | None = None, bench: bool = False, log=print) -> dict:
    """Train and evaluate everything, then write ``out_dir`` atomically; returns the provenance.

    ``bench=True`` first runs :func:`colorlab.train_bench.bench_train` (width 1, 176x176) and
    records it in the provenance.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    prof = PROFILES[profile]
    if epochs is not None:
        prof = dataclasses.replace(prof, epochs=epochs)
    dev = torch.device(device) if device is not None else default_device()
    if profile == "full" and dev.type != "cuda":
        raise RuntimeError("the full reproduction trains six width-1 networks for 100 epochs and "
                           "needs a CUDA GPU (in Colab: Runtime > Change runtime type > GPU); use "
                           "--profile ci for a small CPU run of the same code")
    for ds in datasets:
        if ds not in ("celeba", "fruits"):
            raise ValueError(f"datasets must be among ('celeba', 'fruits'), got {ds!r}")
    work = Path(work_dir) if work_dir is not None else Path("runs") / profile
    out_dir = Path(out_dir)
    clf = None
    if classifier:
        from .classifier import load_classifier

        clf = load_classifier(classifier, dev)
    started = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}-*"):  # left by a killed earlier call
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    stage.chmod(0o755)
    provenance = {"profile": dataclasses.asdict(prof), "device": _device_name(dev),
                  "torch": torch.__version__, "git_commit": _git_commit(),
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "classifier": classifier, "datasets": {}, "runs": {}}
    table: dict[str, dict] = {}
    if bench:
        from .train_bench import bench_train, format_train_bench

        provenance["bench_train"] = bench_train(device=dev)
        log(format_train_bench(provenance["bench_train"]))
    try:
        for ds_name in datasets:
            data = profile_dataset(ds_name, prof)
            log(data.summary())
            splits = data.splits(seed=0)
            manifest = data.manifest(seed=0)
            key = data.name
            ds_out = stage / ds_name
            ds_out.mkdir(parents=True)
            atomic_write_text(json.dumps(manifest), ds_out / "manifest.json")
            provenance["datasets"][ds_name] = {"name": key, "manifest_hash": manifest["hash"],
                                               "source": data.source, "read": len(data),
                                               "skipped": len(data.skipped),
                                               "split_sizes": {k: len(v) for k, v in splits.items()}}
            lam = TrainConfig.lam  # the dataclass default, 0.5, as in Zhang et al.
            p, p_smooth, weights = prior_from_images(splits["train"].images, 5.0, lam)
            atomic_write_text(json.dumps({"empirical": p.tolist(), "smoothed": p_smooth.tolist(),
                                          "weights": weights.tolist(), "sigma": 5.0, "lam": lam}),
                              ds_out / "prior.json")
            predictions = baseline_predictions(splits["test"], splits["train"])
            for loss, method in RUNS.items():
                config = TrainConfig(loss=loss, width=prof.width, epochs=prof.epochs,
                                     batch_size=prof.batch_size, lr=prof.lr, size=prof.size,
                                     compile=prof.compile and dev.type == "cuda",
                                     checkpoint_every=max(1, prof.epochs // 10))
                run_dir = work / ds_name / loss
                t0 = time.perf_counter()
                trainer = Trainer(config, splits["train"], splits["val"], run_dir,
                                  weights=weights if loss == "rebal" else None, device=dev,
                                  progress=progress)
                already = (run_dir / "done.json").exists()
                history = trainer.fit(resume=True)
                wall = time.perf_counter() - t0
                log(f"{ds_name}/{loss}: {'already trained' if already else 'trained'} "
                    f"{len(history)} epochs, final train loss {history[-1]['train_loss']:.4f}")
                (ds_out / loss).mkdir()
                shutil.copy(run_dir / "history.json", ds_out / loss / "history.json")
                train_seconds = sum(h["seconds"] for h in history)
                provenance["runs"][f"{ds_name}/{loss}"] = {
                    "config": config.to_dict(), "epochs": len(history),
                    "train_seconds": train_seconds,
                    "images_per_s": sum(h["images_per_s"] * h["seconds"] for h in history)
                    / max(train_seconds, 1e-9),
                    "wall_seconds_this_call": wall, "resumed_complete": already}
                predictions[method] = predict_ab(trainer.model, splits["test"].images, device=dev)
                if loss == "rebal":
                    _save_examples(trainer.model, splits["test"], ds_out / "examples.pt", dev)
            metrics = evaluate_predictions(splits["test"], predictions, p_smooth, clf)
            metrics["figures"] = _figures(ds_out, splits["test"], predictions, metrics,
                                          prof.figure_images)
            atomic_write_text(json.dumps(metrics), ds_out / "metrics.json")
            rows = {"auc": {m: metrics[m]["auc"] for m in METHODS},
                    "rebalanced_auc": {m: metrics[m]["rebalanced_auc"] for m in METHODS}}
            for metric in ("classifier_accuracy", "agreement"):
                values = {m: metrics[m][metric] for m in ("Ground truth",) + METHODS
                          if m in metrics and metric in metrics[m]}
                if values:
                    rows[metric] = values
            table[ds_name if data.source == "real" else key] = rows
        provenance["wall_seconds"] = time.perf_counter() - started
        atomic_write_text(json.dumps(table, indent=1), stage / "table1.json")
        atomic_write_text(table1_markdown(table), stage / "table1.md")
        atomic_write_text(json.dumps(provenance, indent=1), stage / "provenance.json")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"results written to {out_dir} in {provenance['wall_seconds']:.0f} s")
    return provenance
