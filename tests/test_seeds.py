"""Seeds in Table 1: mean ± sd, paired differences pooled over seeds, two evaluation points
(issue 15), checked against independent float64 formulas."""
import statistics

import numpy as np
import pytest

from colorlab.paired_differences import paired_difference_over_seeds
from colorlab.results_folder import smaller_than
from colorlab.report import mean_sd, table1_seed_dataset_markdown, table1_seed_rows


def test_paired_difference_over_seeds_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.7, 1.0, size=(3, 50))
    b = rng.uniform(0.7, 1.0, size=(3, 50))
    r = paired_difference_over_seeds(a.tolist(), b.tolist())
    d = a - b
    assert r["mean"] == pytest.approx(d.mean(), abs=1e-12)
    assert r["se"] == pytest.approx(d.ravel().std(ddof=1) / np.sqrt(d.size), abs=1e-12)
    assert r["per_seed"] == pytest.approx(d.mean(axis=1).tolist(), abs=1e-12)
    assert r["seed_sd"] == pytest.approx(d.mean(axis=1).std(ddof=1), abs=1e-12)
    assert r["exceeds_seeds"] == (abs(d.mean()) > 2 * d.mean(axis=1).std(ddof=1))
    assert r["seeds"] == 3


def test_an_untrained_method_pairs_with_every_seed():
    gray = [[0.5, 0.6, 0.7]]
    model = [[0.9, 0.8, 0.7], [0.8, 0.8, 0.8]]
    r = paired_difference_over_seeds(model, gray)
    assert r["per_seed"] == pytest.approx([0.2, 0.2])
    assert r["seed_sd"] == pytest.approx(0.0) and r["exceeds_seeds"]


def test_one_seed_has_no_seed_spread():
    r = paired_difference_over_seeds([[0.9, 0.8]], [[0.8, 0.8]])
    assert r["seed_sd"] is None and r["exceeds_seeds"] is None


@pytest.mark.parametrize("a, b", [([], [[1.0, 2.0]]), ([[1.0, 2.0]] * 2, [[1.0, 2.0]] * 3)])
def test_mismatched_seed_lists_are_refused(a, b):
    with pytest.raises(ValueError, match="one score list per seed"):
        paired_difference_over_seeds(a, b)


def test_mean_sd_is_the_sample_standard_deviation():
    values = [91.2, 92.5, 90.9]
    r = mean_sd(values)
    assert r["mean"] == pytest.approx(statistics.fmean(values))
    assert r["sd"] == pytest.approx(np.std(values, ddof=1))
    assert mean_sd([3.0])["sd"] is None


def _metrics():
    entry = lambda auc, chroma: {"auc": auc, "rebalanced_auc": auc - 5, "mean_chroma": chroma,
                                 "colourfulness": 2 * chroma, "epoch": 10}
    metrics = {"Gray": {"auc": 88.0, "rebalanced_auc": 80.0, "mean_chroma": 0.0,
                        "colourfulness": 0.0},
               "Ground truth": {"mean_chroma": 16.0, "colourfulness": 40.0}}
    metrics["seeds"] = {"Class": {"final": [entry(92.0, 12.0), entry(93.0, 13.0)],
                                  "best": [entry(92.5, 11.0), entry(92.5, 11.0)]}}
    return metrics


def test_table1_seed_rows_gives_both_points_for_trained_methods_only():
    rows = table1_seed_rows(_metrics())
    assert rows["auc"]["Class"]["final"]["mean"] == pytest.approx(92.5)
    assert rows["auc"]["Class"]["best"]["sd"] == pytest.approx(0.0)
    assert set(rows["auc"]["Gray"]) == {"final"} and rows["auc"]["Gray"]["final"]["n"] == 1
    assert rows["mean_chroma"]["Ground truth"]["final"]["mean"] == 16.0
    assert "classifier_accuracy" not in rows  # not measured: no row
    assert table1_seed_rows({"Gray": {"auc": 1.0}}) == {}  # a record made before seeds


def test_the_narrow_table_has_a_row_per_method_and_point():
    md = table1_seed_dataset_markdown({"x": table1_seed_rows(_metrics())}, "x",
                                      ("mean_chroma",))
    lines = md.strip().splitlines()
    assert lines[0] == "| method | chroma |"
    assert "| Class | 12.5 ± 0.7 |" in lines
    assert "| Class, best val. | 11.0 ± 0.0 |" in lines
    assert "| Ground truth | 16.0 |" in lines


def test_fewer_seeds_is_a_smaller_reproduction():
    full = {"sample_count": 0, "epochs": 100, "size": 88, "width": 1.0, "seeds": 3}
    assert smaller_than({**full, "seeds": 1}, full)
    assert not smaller_than(full, {**full, "seeds": 1})
    old = {k: v for k, v in full.items() if k != "seeds"}  # recorded before seeds: unknown
    assert not smaller_than(full, old)
