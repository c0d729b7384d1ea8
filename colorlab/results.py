"""Recorded results for the book: the GPU run in ``results/`` or, failing that, a labelled
CI-sized run made on the spot (``book/07_training.ipynb`` to ``book/09_successes_failures.ipynb``).

The book never shows numbers that were not measured: :func:`book_results` returns the folder and a
label that says where its numbers come from (card, date, commit and wall time of the recorded run,
or "CI-sized run on this machine").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .paths import cache_root, results_root
from .results_folder import source_hash
from .table1 import DATASETS, EXAMPLE_FILES, RUNS

__all__ = ["BookResults", "book_results", "ci_results", "book_examples", "load_json",
           "recorded_results"]


@dataclass
class BookResults:
    """Where the chapters read their numbers from, and how to describe them."""

    path: Path
    recorded: bool
    label: str
    provenance: dict

    def json(self, *parts: str):
        return load_json(self.path.joinpath(*parts))

    def _device_calls(self) -> dict | None:
        """``device/calls.json``: the record of the device calls that made the results, if any."""
        path = self.path / "device" / "calls.json"
        return load_json(path) if path.is_file() else None

    def wall_seconds(self) -> float:
        """Wall time of the reproduction: the seconds ``colorlab reproduce`` ran in each device
        call (``device/calls.json``, which also counts a call cut off before it finished a data
        set), else the provenance's ``wall_seconds``."""
        calls = self._device_calls()
        if calls is not None:
            return float(sum(c["reproduce_seconds"] for c in calls["calls"]))
        return float(self.provenance.get("wall_seconds", 0.0))

    def commit(self) -> str:
        """The commit of the code that made the results: the device calls' record where there
        is one (a lent GPU machine's copy of ``.git`` can be stale), else the provenance's."""
        calls = self._device_calls() or {}
        return calls.get("git_commit", self.provenance.get("git_commit", ""))

    def calls(self) -> int:
        """How many device calls the reproduction took (see :meth:`wall_seconds`)."""
        calls = self._device_calls()
        return len(calls["calls"]) if calls is not None else int(self.provenance.get("calls", 1))

    def benchmarks(self) -> dict[str, dict]:
        """The training benchmarks recorded with the run, by name: ``"88-p1"`` (88x88, one
        process), ``"88-p9"`` (nine processes at once, as ``colorlab reproduce`` trains), ...
        from ``device/bench-*.json``; a record made before them has its single ``bench_train``
        under ``"bench"``. Empty when there are none.

        >>> BookResults(Path("nowhere"), False, "", {}).benchmarks()
        {}
        """
        found = {p.stem.removeprefix("bench-"): load_json(p)
                 for p in sorted((self.path / "device").glob("bench-*.json"))}
        if "bench_train" in self.provenance:
            found["bench"] = self.provenance["bench_train"]
        return found

    def markdown(self) -> str:
        """The label as a Markdown note for a chapter (``IPython.display.Markdown``)."""
        kind = "Recorded run" if self.recorded else "No recorded run"
        return f"> **Where these numbers come from ({kind}).** {self.label}"


def load_json(path: str | Path):
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def recorded_results(path: str | Path | None = None) -> BookResults | None:
    """The recorded full-profile run at ``path`` (default :func:`colorlab.paths.results_root`)."""
    path = Path(path) if path is not None else results_root()
    prov_file = path / "provenance.json"
    if not prov_file.is_file():
        return None
    prov = load_json(prov_file)
    if prov.get("profile", {}).get("name") != "full" or not set(DATASETS) <= set(
            prov.get("datasets", {})):
        return None  # the chapters show both datasets of a full run, or a labelled CI run
    runs = len(prov.get("runs", {}))
    results = BookResults(path, True, "", prov)
    commit = results.commit()
    workers = int(prov.get("workers", 1))
    results.label = (
        f"Recorded GPU run: {prov['device']}, {prov['date']}, commit {commit[:10]}, {runs} runs"
        + (f" ({workers} at a time)" if workers > 1 else "")
        + f" in {results.wall_seconds() / 60:.1f} min over {results.calls()} call(s) "
        f"(torch {prov['torch']}).")
    return results


def _cache_dir() -> Path:
    """:func:`colorlab.paths.cache_root`, or a temporary folder when caching is off."""
    import tempfile

    return cache_root() or Path(tempfile.gettempdir()) / "colorlab"


def ci_results(log=None) -> BookResults:
    """A CI-sized reproduction (sample images, tiny models, CPU), made once per version of the
    colorlab sources and cached in ``$COLORLAB_CACHE``; its checkpoints are in ``<path>-runs``."""
    from .reproduce import reproduce

    out = _cache_dir() / f"book-ci-results-{source_hash()}"
    if not (out / "provenance.json").is_file():
        reproduce(out, profile="ci", work_dir=out.with_name(out.name + "-runs"), progress=False,
                  log=log or (lambda *a: None))
    prov = load_json(out / "provenance.json")
    label = (f"No recorded GPU run in results/: these are the numbers of a CI-sized run "
             f"made while building this page ({prov['device']}, sample images instead of the real "
             f"data, width {prov['profile']['width']}, {prov['profile']['epochs']} epochs). They "
             f"show the pipeline, not the report's results.")
    return BookResults(out, False, label, prov)


def book_results(log=None) -> BookResults:
    """The recorded results if present (outside a checkout: fetched, see
    :mod:`colorlab.fetch_results`), else :func:`ci_results`, clearly labelled as such."""
    from .fetch_results import fetched_recorded_results

    return recorded_results() or fetched_recorded_results() or ci_results(log)


#: the example logits a reproduction keeps, by method name
EXAMPLE_METHODS = {RUNS[run]: name for run, name in EXAMPLE_FILES.items()}


def book_examples(dataset: str = "celeba", method: str = "Class+rebal") -> tuple[dict, str]:
    """Predictions of ``method`` (``"Class+rebal"``, or ``"Class"`` where the run kept them) on a
    few test images of ``dataset`` (``L``, ``ab``, ``logits`` as float tensors and ``files``),
    from :func:`book_results`, with a sentence that says which run they come from.
    ``FileNotFoundError`` when the run did not keep that method's examples."""
    import torch

    if method not in EXAMPLE_METHODS:
        raise ValueError(f"method must be one of {tuple(EXAMPLE_METHODS)}, got {method!r}")
    results = book_results()
    saved = torch.load(results.path / dataset / EXAMPLE_METHODS[method], weights_only=True)
    examples = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in saved.items()}
    if results.recorded:
        label = (f"the {method} model (seed 0) of the recorded run "
                 f"({results.provenance['device']}, commit {results.commit()[:10]})")
    else:
        prof = results.provenance["profile"]
        label = (f"the tiny {method} model of a CI-sized run (width {prof['width']}, "
                 f"{prof['epochs']} epochs on {prof['size']}x{prof['size']} sample images): it "
                 f"shows the mechanics, not the quality of a trained colorizer")
    return examples, label
