"""Table 1 of the report: its numbers, and the measured table of a reproduction
(``book/08_evaluation.ipynb`` explains each metric)."""
from __future__ import annotations

__all__ = ["RUNS", "METHODS", "COLUMNS", "DATASETS", "REPORT_TABLE1", "table1_rows",
           "table1_markdown", "table1_dataset_markdown", "report_comparison",
           "report_comparison_markdown", "METRIC_LABELS"]

#: the three trained models: run name (``runs/<dataset>/<run>``) -> method name in the tables
RUNS = {"l2": "L2", "ce": "Class", "rebal": "Class+rebal"}
METHODS = ("Gray", "Random", *RUNS.values())
#: the table's columns: the real colour images (classifier rows), then every method
COLUMNS = ("Ground truth", *METHODS)

#: Table 1 of the report (AuC %, and VGG16 top-1 % on Fruits, ground truth 44.0)
REPORT_TABLE1 = {
    "celeba": {"auc": {"Gray": 88.8, "Random": 87.4, "L2": 91.5, "Class": 92.2, "Class+rebal": 92.3}},
    "fruits": {"auc": {"Gray": 76.9, "Random": 74.1, "L2": 76.9, "Class": 84.5, "Class+rebal": 84.3},
               "classifier_accuracy": {"Ground truth": 44.0, "Gray": 33.2, "Random": 28.2,
                                       "L2": 31.7, "Class": 35.9, "Class+rebal": 39.8}},
}
#: the report's two datasets, in its order
DATASETS = tuple(REPORT_TABLE1)
#: short names of the metrics for narrow tables (the book's pages)
METRIC_LABELS = {"auc": "AuC", "rebalanced_auc": "AuC rebal.", "agreement": "agreement",
                 "classifier_accuracy": "accuracy"}


def table1_rows(metrics: dict) -> dict[str, dict[str, float]]:
    """One dataset's rows of Table 1 from its ``metrics.json``: AuC and rebalanced AuC of every
    method, and classifier accuracy or agreement where they were measured (percent).

    >>> m = {k: {"auc": 90.0, "rebalanced_auc": 80.0} for k in METHODS}
    >>> m["Ground truth"] = {"agreement": 100.0}
    >>> sorted(table1_rows(m))
    ['agreement', 'auc', 'rebalanced_auc']
    """
    rows = {"auc": {m: metrics[m]["auc"] for m in METHODS},
            "rebalanced_auc": {m: metrics[m]["rebalanced_auc"] for m in METHODS}}
    for metric in ("classifier_accuracy", "agreement"):
        values = {m: metrics[m][metric] for m in COLUMNS
                  if m in metrics and metric in metrics[m]}
        if values:
            rows[metric] = values
    return rows


def table1_markdown(table: dict) -> str:
    """Table 1 as Markdown: measured beside the report's numbers (real data only).

    >>> print(table1_markdown({"celeba": {"auc": {"Gray": 90.0}}}).splitlines()[2])
    | celeba | auc |  | 90.0 (88.8) |  (87.4) |  (91.5) |  (92.2) |  (92.3) |
    """
    lines = ["| dataset | metric | " + " | ".join(COLUMNS) + " |",
             "| --- | --- | " + " | ".join(["---"] * len(COLUMNS)) + " |"]
    for ds, rows in table.items():
        for metric, values in rows.items():
            report = REPORT_TABLE1.get(ds, {}).get(metric, {})  # real data only, not stand-ins
            cells = []
            for m in COLUMNS:
                v, r = values.get(m), report.get(m)
                cell = "" if v is None else f"{v:.1f}"
                if r is not None:
                    cell += f" ({r:.1f})"
                cells.append(cell)
            lines.append(f"| {ds} | {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Measured values; the report's in parentheses (its classifier was VGG16).")
    return "\n".join(lines) + "\n"


def table1_dataset_markdown(table: dict, dataset: str) -> str:
    """One dataset of Table 1, transposed to fit a narrow page: a row per method, a column per
    metric, the report's number in parentheses (real data only).

    >>> print(table1_dataset_markdown({"celeba": {"auc": {"Gray": 90.0}}}, "celeba"))
    | method | AuC |
    | --- | ---: |
    | Gray | 90.0 (88.8) |
    <BLANKLINE>
    """
    rows = table[dataset]
    report = REPORT_TABLE1.get(dataset, {})
    lines = ["| method | " + " | ".join(METRIC_LABELS.get(m, m) for m in rows) + " |",
             "| --- | " + " | ".join(["---:"] * len(rows)) + " |"]
    for method in COLUMNS:
        if not any(method in values for values in rows.values()):
            continue
        cells = []
        for metric, values in rows.items():
            v, r = values.get(method), report.get(metric, {}).get(method)
            cells.append(("" if v is None else f"{v:.1f}") + ("" if r is None else f" ({r:.1f})"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_comparison(table: dict) -> list[dict]:
    """Every cell of a measured Table 1 that the report also has, one row each: ``dataset``,
    ``metric``, ``method``, ``measured``, ``report`` and ``difference`` (measured - report, in
    percentage points). Classifier-accuracy rows add ``share`` and ``report_share``: the method's
    accuracy as a percentage of the ground truth's accuracy under the same classifier, the fair
    comparison when the classifiers differ (EfficientNet-Lite0 here, VGG16 in the report).
    Datasets without report numbers (sample stand-ins of a CI run) give no rows.

    >>> rows = report_comparison({"fruits": {"classifier_accuracy": {"Ground truth": 50.0,
    ...                                                               "Class": 40.0}}})
    >>> [(r["method"], round(r["difference"], 1), r["share"], round(r["report_share"], 1))
    ...  for r in rows]
    [('Ground truth', 6.0, 100.0, 100.0), ('Class', 4.1, 80.0, 81.6)]
    """
    rows = []
    for ds, metrics in table.items():
        for metric, values in metrics.items():
            report = REPORT_TABLE1.get(ds, {}).get(metric, {})
            for method in COLUMNS:
                if method not in values or method not in report:
                    continue
                row = {"dataset": ds, "metric": metric, "method": method,
                       "measured": values[method], "report": report[method],
                       "difference": values[method] - report[method]}
                if metric == "classifier_accuracy" and "Ground truth" in values:
                    row["share"] = 100 * values[method] / values["Ground truth"]
                    row["report_share"] = 100 * report[method] / report["Ground truth"]
                rows.append(row)
    return rows


def report_comparison_markdown(table: dict) -> str:
    """:func:`report_comparison` as a Markdown table (one decimal; empty when there is nothing
    to compare).

    >>> print(report_comparison_markdown({"celeba": {"auc": {"Gray": 90.0}}}).splitlines()[2])
    | celeba | AuC | Gray | 90.0 | 88.8 | +1.2 |  |
    """
    rows = report_comparison(table)
    if not rows:
        return ""
    lines = ["| data | metric | method | ours | report | Δ | share of truth |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        share = f"{r['share']:.1f} ({r['report_share']:.1f})" if "share" in r else ""
        metric = METRIC_LABELS.get(r["metric"], r["metric"])
        lines.append(f"| {r['dataset']} | {metric} | {r['method']} | {r['measured']:.1f} | "
                     f"{r['report']:.1f} | {r['difference']:+.1f} | {share} |")
    return "\n".join(lines) + "\n"
