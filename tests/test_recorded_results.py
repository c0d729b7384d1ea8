"""The committed ``results/``: the recorded GPU run the book shows (issue 5).

These tests read only the committed files. They check that the folder is one complete full-profile
run, that Table 1 is derived from the metrics and not typed in, and that every file the chapters
open exists and stays small.
"""
import json
import re

import pytest
import torch

from colorlab.figures import FAILURE_MODES
from colorlab.settings import results_root
from colorlab.reproduce import PROFILES, RUNS
from colorlab.results import book_examples, recorded_results
from colorlab.runs import run_name
from colorlab.report import DATASETS, METHODS, table1_markdown, table1_rows, table1_seed_rows

ROOT = results_root()
FIGURES = ["fig3_successes.png"] + [f"fig6_{mode}.png" for mode in FAILURE_MODES]


@pytest.fixture(scope="module")
def provenance():
    recorded = recorded_results(ROOT)
    assert recorded is not None, f"{ROOT} holds no recorded full-profile run"
    return recorded.provenance


def test_provenance_describes_one_complete_gpu_run(provenance):
    assert provenance["profile"] == PROFILES["full"].record()
    assert re.fullmatch(r"[0-9a-f]{40}", provenance["git_commit"])
    assert not provenance["device"].startswith("CPU")  # a card's name (device_name)
    assert set(provenance["datasets"]) == set(DATASETS)
    seeds = PROFILES["full"].seeds
    assert set(provenance["runs"]) == {run_name(ds, loss, seed) for ds in DATASETS
                                       for loss in RUNS for seed in range(seeds)}
    for name, run in provenance["runs"].items():
        assert run["epochs"] == PROFILES["full"].epochs, name
        assert run["config"]["seed"] == (int(name[-1]) if "/seed" in name else 0), name
        assert run["images_per_s"] > 0 and run["train_seconds"] > 0, name
    # the runs trained at the same time, so each call lasted at least as long as its longest run
    calls = json.loads((ROOT / "device" / "calls.json").read_text())["calls"]
    assert sum(c["reproduce_seconds"] for c in calls) >= max(r["train_seconds"] for r in
                                                             provenance["runs"].values())
    assert provenance["wall_seconds"] == pytest.approx(sum(provenance["call_wall_seconds"]
                                                           .values()))


@pytest.mark.parametrize("name", ["88-p1", "88-p9", "176-p1", "176-p4", "176-p1-compiled",
                                  "176-p4-compiled"])
def test_the_recorded_benchmark_compares_one_process_with_several(name):
    bench = json.loads((ROOT / "device" / f"bench-{name}.json").read_text())
    size, processes = (int(x) for x in name.replace("p", "").split("-")[:2])
    assert (bench["size"], bench["processes"], bench["width"]) == (size, processes, 1.0)
    assert bench["compile"] == name.endswith("-compiled")
    assert len(bench["images_per_s_windows"]) == 5
    assert bench["images_per_s"] == pytest.approx(sorted(bench["images_per_s_windows"])[2])
    assert 0 < bench["fraction_of_ceiling"] < 1


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_dataset_has_what_the_chapters_read(provenance, dataset):
    folder = ROOT / dataset
    for name in ["manifest.json", "prior.json", "metrics.json", "examples.pt", "dataset.json",
                 "fig_saturation.png", *FIGURES, *(f"{run}/history.json" for run in RUNS)]:
        assert (folder / name).is_file(), folder / name
    for run in RUNS:
        for seed in range(PROFILES["full"].seeds):
            suffix = f"-seed{seed}" if seed else ""
            history = json.loads((folder / run / f"history{suffix}.json").read_text())
            assert [h["epoch"] for h in history] == list(range(1, PROFILES["full"].epochs + 1))
            assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in history)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["hash"] == provenance["datasets"][dataset]["manifest_hash"]
    examples, label = book_examples(dataset)
    assert "recorded run" in label and examples["logits"].shape[1] == 313
    assert len(examples["files"]) == examples["L"].shape[0] <= 6  # a few images, never the data


def test_table1_is_derived_from_the_recorded_metrics(provenance):
    table = json.loads((ROOT / "table1.json").read_text())
    seed_table = json.loads((ROOT / "table1_seeds.json").read_text())
    assert set(table) == set(seed_table) == set(DATASETS)
    for dataset in DATASETS:
        metrics = json.loads((ROOT / dataset / "metrics.json").read_text())
        assert table[dataset] == table1_rows(metrics)
        assert seed_table[dataset] == table1_seed_rows(metrics)
        for method in METHODS:
            assert 0 <= metrics[method]["auc"] <= 100
            curve = torch.tensor(metrics[method]["cumulative_per_pixel"])
            assert len(curve) == 151 and bool((curve.diff() >= 0).all())
        test_images = provenance["datasets"][dataset]["split_sizes"]["test"]
        for method in RUNS.values():
            for point in ("final", "best"):
                entries = metrics["seeds"][method][point]
                assert len(entries) == PROFILES["full"].seeds
                assert all(len(e["per_image_auc"]) == test_images for e in entries)
                assert all(1 <= e["epoch"] <= PROFILES["full"].epochs for e in entries)
            # seed 0's last epoch is the model of the top-level entry and the figures
            assert metrics["seeds"][method]["final"][0]["auc"] == pytest.approx(
                metrics[method]["auc"])
    assert (ROOT / "table1.md").read_text() == table1_markdown(table, seed_table)


def test_recorded_files_are_small():
    """Figures and a few examples only: nothing over 3 MB, under 12 MB in all."""
    sizes = {p: p.stat().st_size for p in ROOT.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 3 * 2 ** 20, max(sizes, key=sizes.get)
    assert sum(sizes.values()) < 12 * 2 ** 20
