"""Comparing a measured Table 1 with the report's, and two methods image by image."""
import numpy as np
import pytest
import scipy.stats

from colorlab.paired_differences import paired_difference
from colorlab.report import (METHODS, REPORT_TABLE1, report_comparison,
                             report_comparison_markdown)


def test_paired_difference_matches_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.7, 0.95, 500)
    b = a - rng.normal(0.004, 0.02, 500)  # a shared per-image level, as for two colorizers
    mean, se = paired_difference(a.tolist(), b.tolist())
    t = scipy.stats.ttest_rel(a, b).statistic
    assert mean == pytest.approx(float(np.mean(a - b)), rel=1e-12)
    assert mean / se == pytest.approx(float(t), rel=1e-10)
    # pairing removes the shared level: far smaller than the unpaired standard error
    unpaired = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert se < unpaired / 3


@pytest.mark.parametrize("a, b, message", [
    ([0.5, 0.6], [0.5], "same images"),
    ([0.5], [0.4], "at least 2"),
    ([0.5, float("nan")], [0.4, 0.4], "finite"),
])
def test_paired_difference_bad_arguments(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b)


def _measured(offset: float) -> dict:
    """A full measured table: every report cell plus ``offset``, and a rebalanced AuC row."""
    table = {ds: {metric: {m: v + offset for m, v in row.items()} for metric, row in rows.items()}
             for ds, rows in REPORT_TABLE1.items()}
    for rows in table.values():
        rows["rebalanced_auc"] = {m: 80.0 for m in METHODS}  # not in the report: no rows
    return table


def test_report_comparison_has_every_report_cell_once():
    rows = report_comparison(_measured(1.5))
    cells = {(r["dataset"], r["metric"], r["method"]) for r in rows}
    expected = {(ds, metric, m) for ds, metrics in REPORT_TABLE1.items()
                for metric, row in metrics.items() for m in row}
    assert cells == expected and len(rows) == len(expected)
    for r in rows:
        assert r["report"] == REPORT_TABLE1[r["dataset"]][r["metric"]][r["method"]]
        assert r["difference"] == pytest.approx(1.5)
        assert r["measured"] - r["report"] == pytest.approx(r["difference"])


def test_classifier_share_of_ground_truth():
    rows = {r["method"]: r for r in report_comparison(_measured(0.0))
            if r["metric"] == "classifier_accuracy"}
    report = REPORT_TABLE1["fruits"]["classifier_accuracy"]
    assert rows["Ground truth"]["share"] == pytest.approx(100.0)
    for method, r in rows.items():
        assert r["share"] == pytest.approx(r["report_share"])
        assert r["report_share"] == pytest.approx(100 * report[method] / report["Ground truth"])


def test_stand_in_datasets_are_not_compared():
    """A CI run's sample stand-ins carry other names and are never set beside the report."""
    table = {"astronaut+coffee": {"auc": {m: 90.0 for m in METHODS}}}
    assert report_comparison(table) == [] and report_comparison_markdown(table) == ""


def test_comparison_markdown_has_a_row_per_cell():
    table = _measured(-0.25)
    text = report_comparison_markdown(table)
    body = text.strip().splitlines()[2:]
    assert len(body) == len(report_comparison(table))
    assert all(line.count("|") == 8 for line in body)
    # Class+rebal: 39.55 of the ground truth's 43.75 measured, 39.8 of 44.0 in the report
    assert "| fruits | accuracy | Class+rebal | 39.5 | 39.8 | -0.2 | 90.4 (90.5) |" in text
