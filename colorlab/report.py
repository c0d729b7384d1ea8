"""The report's experiment and its Table 1: the data sets, runs and methods every other module
imports (:data:`DATASETS`, :data:`RUNS`, :data:`METHODS`), the report's published numbers
(:data:`REPORT_TABLE1`), and the measured table of a reproduction with its mean ± s.d. over seeds
(``book/08_evaluation.ipynb`` explains each metric).
"""
from __future__ import annotations

import math
import statistics

__all__ = ["RUNS", "METHODS", "EXAMPLE_FILES", "COLUMNS", "DATASETS", "REPORT_TABLE1",
           "table1_rows", "SEED_METRICS", "mean_sd", "table1_seed_rows",
           "table1_seed_dataset_markdown", "table1_markdown", "table1_dataset_markdown",
           "report_comparison", "report_comparison_markdown", "METRIC_LABELS"]


#: the three trained models: run name (``runs/<dataset>/<run>``) -> method name in the tables
RUNS = {"l2": "L2", "ce": "Class", "rebal": "Class+rebal"}
METHODS = ("Gray", "Random", *RUNS.values())
#: the logits of a few test images that a reproduction keeps per classification model (seed 0),
#: for the annealed-mean chapter: run name -> file name in ``results/<dataset>/``
EXAMPLE_FILES = {"rebal": "examples.pt", "ce": "examples-ce.pt"}
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
                 "classifier_accuracy": "accuracy", "mean_chroma": "chroma",
                 "colourfulness": "colourfulness"}
#: the measures that Table 1 gives as mean ± sd over seeds, at both evaluation points
SEED_METRICS = ("auc", "rebalanced_auc", "classifier_accuracy", "agreement", "mean_chroma",
                "colourfulness")


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


def mean_sd(values) -> dict:
    """Mean, sample standard deviation (``n - 1``; None for one value), ``n`` and the values.

    >>> mean_sd([90.0, 91.0, 92.0])
    {'mean': 91.0, 'sd': 1.0, 'n': 3, 'values': [90.0, 91.0, 92.0]}
    """
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None, "n": len(values),
            "values": values}


def table1_seed_rows(metrics: dict) -> dict[str, dict[str, dict]]:
    """Table 1 over seeds from a ``metrics.json`` with per-seed entries (``"seeds"``:
    method -> point -> one entry per seed, :mod:`colorlab.runs`): metric -> method ->
    ``{"final": mean_sd, "best": mean_sd}``. The untrained methods (Gray, Random) and the ground
    truth have one value, at ``"final"``. Empty for records made before seeds.

    >>> m = {"Gray": {"auc": 88.0}, "Random": {"auc": 87.0},
    ...      "seeds": {"L2": {"final": [{"auc": 90.0}, {"auc": 92.0}],
    ...                       "best": [{"auc": 91.0}, {"auc": 91.0}]}}}
    >>> rows = table1_seed_rows(m)["auc"]
    >>> rows["L2"]["final"]["mean"], rows["L2"]["best"]["sd"], rows["Gray"]["final"]["n"]
    (91.0, 0.0, 1)
    """
    seeds = metrics.get("seeds")
    if not seeds:
        return {}
    rows: dict[str, dict[str, dict]] = {}
    for metric in SEED_METRICS:
        values = {}
        for method in COLUMNS:
            if method in seeds:
                points = {point: mean_sd(e[metric] for e in entries)
                          for point, entries in seeds[method].items()
                          if entries and all(metric in e for e in entries)}
            elif metric in metrics.get(method, {}):
                points = {"final": mean_sd([metrics[method][metric]])}
            else:
                points = {}
            if points:
                values[method] = points
        if any(method in seeds for method in values):
            rows[metric] = values
    return rows


def _cell(stats: dict | None, digits: int = 1) -> str:
    """``mean ± sd`` (the mean alone for one value)."""
    if stats is None:
        return ""
    if stats["sd"] is None or math.isnan(stats["sd"]):
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"


def table1_markdown(table: dict, seed_table: dict | None = None) -> str:
    """Table 1 as Markdown: measured beside the report's numbers (real data only).

    With ``seed_table`` (:func:`table1_seed_rows` per dataset) each metric has two rows, the
    report's evaluation point (the last epoch) and the epoch of the lowest validation loss, each
    cell the mean ± sd over seeds of a trained method; the report's number stays beside the
    first. Without it, the seed-0 values of ``table``.

    >>> print(table1_markdown({"celeba": {"auc": {"Gray": 90.0}}}).splitlines()[2])
    | celeba | auc |  | 90.0 (88.8) |  (87.4) |  (91.5) |  (92.2) |  (92.3) |
    """
    if seed_table:
        return _seed_markdown(seed_table)
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


def _seed_markdown(seed_table: dict) -> str:
    lines = ["| dataset | metric | evaluated at | " + " | ".join(COLUMNS) + " |",
             "| --- | --- | --- | " + " | ".join(["---"] * len(COLUMNS)) + " |"]
    seeds = 0
    for ds, rows in seed_table.items():
        for metric, values in rows.items():
            report = REPORT_TABLE1.get(ds, {}).get(metric, {})
            for point, label in (("final", "last epoch"), ("best", "best val. loss")):
                cells = []
                for m in COLUMNS:
                    stats = values.get(m, {}).get(point)
                    seeds = max(seeds, stats["n"] if stats else 0)
                    cell = _cell(stats, 2 if metric == "colourfulness" else 1)
                    if point == "final" and m in report:
                        cell += f" ({report[m]:.1f})"
                    cells.append(cell)
                lines.append(f"| {ds} | {METRIC_LABELS.get(metric, metric)} | {label} | "
                             + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Trained methods: mean ± sd over {seeds} seeds. The report's numbers in "
                 f"parentheses (its classifier was VGG16); Gray and Random are not trained.")
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


#: the names of the two evaluation points in the book's tables
POINT_LABELS = {"final": "last epoch", "best": "best val."}


def table1_seed_dataset_markdown(seed_table: dict, dataset: str,
                                 metrics: tuple[str, ...] | None = None) -> str:
    """One dataset of :func:`table1_seed_rows`, narrow enough for a phone: a row per method and
    evaluation point (a trained method's second row, ``"<method>, best val."``, is the epoch of
    its lowest validation loss), a column per metric (``metrics``: default all), each cell the
    mean ± sd over seeds (one value for the untrained methods and the ground truth), the report's
    number in parentheses on the last-epoch rows (real data only).

    >>> rows = {"auc": {"Gray": {"final": mean_sd([88.0])},
    ...                 "L2": {"final": mean_sd([90.0, 92.0]), "best": mean_sd([91.0, 91.0])}}}
    >>> print(table1_seed_dataset_markdown({"celeba": rows}, "celeba"))
    | method | AuC |
    | --- | ---: |
    | Gray | 88.0 (88.8) |
    | L2 | 91.0 ± 1.4 (91.5) |
    | L2, best val. | 91.0 ± 0.0 |
    <BLANKLINE>
    """
    rows = seed_table[dataset]
    metrics = tuple(m for m in (metrics or tuple(rows)) if m in rows)
    report = REPORT_TABLE1.get(dataset, {})
    lines = ["| method | " + " | ".join(METRIC_LABELS.get(m, m) for m in metrics) + " |",
             "| --- | " + " | ".join(["---:"] * len(metrics)) + " |"]
    for method in COLUMNS:
        points = [p for p in POINT_LABELS if any(p in rows[m].get(method, {}) for m in metrics)]
        for point in points:
            trained = any("best" in rows[m].get(method, {}) for m in metrics)
            cells = []
            for metric in metrics:
                stats = rows[metric].get(method, {}).get(point)
                cell = _cell(stats, 2 if metric == "colourfulness" else 1)
                r = report.get(metric, {}).get(method)
                if stats is not None and point == "final" and r is not None:
                    cell += f" ({r:.1f})"
                cells.append(cell)
            label = f"{method}, {POINT_LABELS[point]}" if trained and point == "best" else method
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
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
