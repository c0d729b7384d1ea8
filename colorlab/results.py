"""Recorded results for the book: the GPU run in ``results/``, fetched when there is no checkout,
or, failing both, a labelled CI-sized run made on the spot (``book/07_training.ipynb`` to
``book/09_successes_failures.ipynb``).

The book never shows numbers that were not measured: :func:`book_results` returns the folder and a
label that says where its numbers come from (card, date, commit and wall time of the recorded run,
or "CI-sized run on this machine").

**Outside a checkout** (``colorlab results fetch`` and the chapters' fallback) the recorded run
is fetched from git: :mod:`colorlab.results_fetch`.

:func:`fetched_recorded_results` is what :func:`book_results` calls when no ``results/`` is at
hand: the fetched recorded run, or None after printing one line that says why (the chapter then
shows its labelled CI-sized stand-in). It never falls back silently.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .report import DATASETS, EXAMPLE_FILES, RUNS
from .results_fetch import FETCHED, REPOSITORY, FetchError, book_ref, fetch_results, repository
from .settings import checkout_root, results_root, scratch_root
from .source_code import source_hash

__all__ = ["BookResults", "book_results", "ci_results", "book_examples", "load_json",
           "recorded_results", "fetched_recorded_results", "add_results_command"]


@dataclass
class BookResults:
    """Where the chapters read their numbers from, and how to describe them."""

    path: Path
    recorded: bool
    label: str
    provenance: dict

    def json(self, *parts: str):
        return load_json(self.path.joinpath(*parts))

    @functools.cached_property
    def _device_calls(self) -> dict | None:
        """``device/calls.json``: the record of the device calls that made the results, if any
        (read once)."""
        path = self.path / "device" / "calls.json"
        return load_json(path) if path.is_file() else None

    @property
    def _calls_instead(self) -> dict | None:
        """``device/calls.json`` where it stands in for the provenance's calls: a provenance made
        before the call log counted only the calls that finished a data set (and a lent GPU
        machine's copy of ``.git`` could give a stale commit then)."""
        return None if "call_log" in self.provenance else self._device_calls

    def wall_seconds(self) -> float:
        """Wall time of the reproduction: the sum over the calls that worked on it (the
        provenance's ``call_log``, :meth:`colorlab.results_folder.ResultsFolder.calls`)."""
        calls = self._calls_instead
        if calls is not None:
            return float(sum(c["reproduce_seconds"] for c in calls["calls"]))
        return float(self.provenance.get("wall_seconds", 0.0))

    def commit(self) -> str:
        """The commit of the code that made the results."""
        calls = self._calls_instead or {}
        return calls.get("git_commit", self.provenance.get("git_commit", ""))

    def calls(self) -> int:
        """How many calls the reproduction took (see :meth:`wall_seconds`)."""
        calls = self._calls_instead
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

    def benchmark_sources(self) -> dict[str, str]:
        """Which device call measured which benchmarks (``device/calls.json``'s
        ``"benchmarks"``: names -> a sentence), when they came from more than one call.

        >>> BookResults(Path("nowhere"), False, "", {}).benchmark_sources()
        {}
        """
        return dict((self._device_calls or {}).get("benchmarks", {}))

    def markdown(self) -> str:
        """The label as a Markdown note for a chapter (``IPython.display.Markdown``)."""
        kind = "Recorded run" if self.recorded else "No recorded run"
        return f"> **Where these numbers come from ({kind}).** {self.label}"


def load_json(path: str | Path):
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def recorded_results(path: str | Path | None = None) -> BookResults | None:
    """The recorded full-profile run at ``path`` (default :func:`colorlab.settings.results_root`)."""
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


def ci_results(log=None) -> BookResults:
    """A CI-sized reproduction (sample images, tiny models, CPU), made once per version of the
    colorlab sources and cached in ``$COLORLAB_CACHE``; its checkpoints are in ``<path>-runs``."""
    from .reproduce import reproduce

    out = scratch_root() / f"book-ci-results-{source_hash()}"
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
    """The recorded results if present (outside a checkout: fetched by
    :func:`fetched_recorded_results`), else :func:`ci_results`, clearly labelled as such."""
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


@functools.lru_cache(maxsize=1)
def fetched_recorded_results(log=print):
    """The recorded run fetched by :func:`colorlab.results_fetch.fetch_results`, for chapters run
    outside a checkout.

    None in a checkout or with ``$COLORLAB_RESULTS`` set (those say where results are), and None
    after one printed line when the fetch fails or brings no full recorded run. Tried once per
    process."""
    if checkout_root() is not None or os.environ.get("COLORLAB_RESULTS"):
        return None
    url, ref = repository(), book_ref()
    try:
        path = fetch_results(url=url, ref=ref)
    except FetchError as err:
        log(f"Note: the recorded results could not be fetched ({err}); this page shows a "
            f"CI-sized stand-in run instead (set COLORLAB_REPOSITORY to another source).")
        return None
    found = recorded_results(path)
    if found is None:
        log(f"Note: results/ of {url} at {ref} holds no full recorded run; this page shows a "
            f"CI-sized stand-in run instead.")
    return found


def add_results_command(sub) -> None:
    """Register ``colorlab results fetch`` on the sub-command parser of :mod:`colorlab.cli`."""
    p = sub.add_parser("results", help="fetch the recorded results/ of the book's version")
    p.add_argument("action", choices=("fetch",))
    p.add_argument("--repository", default=None, help="git URL (default: $COLORLAB_REPOSITORY "
                                                      f"or {REPOSITORY})")
    p.add_argument("--ref", default=None, help="branch, tag or commit (default: $COLORLAB_REF, "
                                               "the installed commit, or main)")
    p.add_argument("--out", default=None, help="where to put results/ (default: the cache)")
    p.add_argument("--refresh", action="store_true", help="fetch again even if cached")
    p.set_defaults(run=_fetch_command)


def _fetch_command(args) -> int:
    path = fetch_results(args.out, args.repository, args.ref, refresh=args.refresh)
    origin = load_json(path / FETCHED)
    found = recorded_results(path)
    print(f"results/ of {origin['repository']} at {origin['commit'][:10]} in {path}")
    print(found.label if found else "it holds no full recorded run")
    print(f"use it with: export COLORLAB_RESULTS={path}")
    return 0
