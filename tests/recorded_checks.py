"""What a recorded ``results/`` folder must hold, as checks of any folder and profile: the
committed GPU run (``test_recorded_results.py``, the full profile) and a dry run landed by
``scripts/device/land.py`` (``test_device_script.py``, the ci profile) pass the same checks, so a
GPU session's landing passes the committed folder's tests."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from colorlab.failure_modes import FAILURE_MODES
from colorlab.reproduce import RUNS, ReproduceProfile
from colorlab.results import BookResults
from colorlab.runs import run_name
from colorlab.report import (DATASETS, EXAMPLE_FILES, METHODS, table1_markdown, table1_rows,
                             table1_seed_rows)

FIGURES = ["fig3_successes.png"] + [f"fig6_{mode}.png" for mode in FAILURE_MODES]
#: the benchmark records a recorded run must have, by profile (``BookResults.benchmarks``
#: names): the eager step with one process against several at both sizes; the dry run of
#: scripts/device/reproduce.sh (ci) measures one process at 16x16
REQUIRED_BENCHMARKS = {"full": ("88-p1", "88-p9", "176-p1", "176-p4"), "ci": ("16-p1",)}


def check_provenance(results: BookResults, prof: ReproduceProfile) -> None:
    """One complete run of ``prof`` on a card, each call's wall time counted."""
    provenance = results.provenance
    assert provenance["profile"] == prof.record()
    assert re.fullmatch(r"[0-9a-f]{40}", results.commit()), (
        f"the provenance names the commit {results.commit()!r}, not one commit of 40 hex digits "
        f"(every call of one reproduction must carry the same .devpack/commit)")
    assert set(provenance["datasets"]) == set(DATASETS)
    assert set(provenance["runs"]) == {run_name(ds, loss, seed) for ds in DATASETS
                                       for loss in RUNS for seed in range(prof.seeds)}
    for name, run in provenance["runs"].items():
        assert run["epochs"] == prof.epochs, name
        assert run["config"]["seed"] == (int(name[-1]) if "/seed" in name else 0), name
        assert run["images_per_s"] > 0 and run["train_seconds"] > 0, name
    # the runs trained at the same time, so the calls lasted at least as long as the longest run
    assert results.wall_seconds() >= max(r["train_seconds"] for r in provenance["runs"].values())
    assert provenance["wall_seconds"] == pytest.approx(sum(provenance["call_wall_seconds"]
                                                           .values()))


def check_benchmark(results: BookResults, name: str, width: float | None) -> None:
    """A ``colorlab bench train`` record of the network at ``width`` (None: any) whose name says
    its size, processes and step (``-compiled``, ``-sync``, ``-graphs``)."""
    bench = results.benchmarks()[name]
    size, processes = (int(x) for x in name.replace("p", "").split("-")[:2])
    assert (bench["size"], bench["processes"]) == (size, processes)
    assert width is None or bench["width"] == width
    # compiled and graphed exactly when the name says so (scripts/device/land.py leaves out a
    # record whose step fell back to the eager one)
    assert bench["compile"] == ("compiled" in name)
    assert bool(bench.get("cuda_graph")) == ("graphs" in name)
    if "sync_search" in bench:  # (records made before it read the flag every step)
        assert bench["sync_search"] == name.endswith("-sync")
    assert len(bench["images_per_s_windows"]) == 5
    assert bench["images_per_s"] == pytest.approx(sorted(bench["images_per_s_windows"])[2])
    assert 0 < bench["fraction_of_ceiling"] < 1


def check_dataset(results: BookResults, dataset: str, prof: ReproduceProfile) -> None:
    """The files chapters 7 to 9 open, a history per run and seed, the data's manifest."""
    folder = results.path / dataset
    for name in ["manifest.json", "prior.json", "metrics.json", "examples.pt", "dataset.json",
                 "fig_saturation.png", *FIGURES, *(f"{run}/history.json" for run in RUNS)]:
        assert (folder / name).is_file(), folder / name
    for run in RUNS:
        for seed in range(prof.seeds):
            suffix = f"-seed{seed}" if seed else ""
            history = json.loads((folder / run / f"history{suffix}.json").read_text())
            assert [h["epoch"] for h in history] == list(range(1, prof.epochs + 1))
            assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in history)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["hash"] == results.provenance["datasets"][dataset]["manifest_hash"]
    for name in EXAMPLE_FILES.values():  # (a run recorded before the Class examples has one)
        if name == "examples.pt" or (folder / name).is_file():
            examples = torch.load(folder / name, weights_only=True)
            assert examples["logits"].shape[1] == 313
            # a few images, never the data
            assert len(examples["files"]) == examples["L"].shape[0] <= 6


def check_table1(results: BookResults, prof: ReproduceProfile) -> None:
    """Table 1 (both evaluation points, every seed) is derived from the metrics."""
    root = results.path
    table = json.loads((root / "table1.json").read_text())
    seed_table = json.loads((root / "table1_seeds.json").read_text())
    # by the data's name (a stand-in for the real data says so in it)
    names = {ds: results.provenance["datasets"][ds]["name"] for ds in DATASETS}
    assert set(table) == set(seed_table) == set(names.values())
    for dataset, name in names.items():
        metrics = json.loads((root / dataset / "metrics.json").read_text())
        assert table[name] == table1_rows(metrics)
        assert seed_table[name] == table1_seed_rows(metrics)
        for method in METHODS:
            assert 0 <= metrics[method]["auc"] <= 100
            curve = torch.tensor(metrics[method]["cumulative_per_pixel"])
            assert len(curve) == 151 and bool((curve.diff() >= 0).all())
        test_images = results.provenance["datasets"][dataset]["split_sizes"]["test"]
        for method in RUNS.values():
            for point in ("final", "best"):
                entries = metrics["seeds"][method][point]
                assert len(entries) == prof.seeds
                assert all(len(e["per_image_auc"]) == test_images for e in entries)
                assert all(1 <= e["epoch"] <= prof.epochs for e in entries)
            # seed 0's last epoch is the model of the top-level entry and the figures
            assert metrics["seeds"][method]["final"][0]["auc"] == pytest.approx(
                metrics[method]["auc"])
    assert (root / "table1.md").read_text() == table1_markdown(table, seed_table)


def check_small(root: Path) -> None:
    """Figures and a few examples only: nothing over 3 MiB, and under 15 MiB in all, so that a
    device call brings the folder back in one ``results.tgz`` (the device tool returns files of
    at most 16 MiB; figures and float16 logits barely compress)."""
    sizes = {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 3 * 2 ** 20, max(sizes, key=sizes.get)
    assert sum(sizes.values()) < 15 * 2 ** 20, f"{sum(sizes.values()) / 2 ** 20:.1f} MiB"


def check_recorded_folder(results: BookResults, prof: ReproduceProfile,
                          bench_width: float | None) -> None:
    """Every check above on one folder (what ``scripts/device/land.py`` asks of a folder before
    it lands), with each benchmark record of the network at ``bench_width`` (None: any)."""
    check_provenance(results, prof)
    for dataset in results.provenance["datasets"]:
        check_dataset(results, dataset, prof)
    check_table1(results, prof)
    for name in results.benchmarks():
        check_benchmark(results, name, bench_width)
    check_small(results.path)
