#!/usr/bin/env python3
"""Land what a GPU session's calls of scripts/device/reproduce.sh brought back: the throughput
table for the note, ``.devresults/`` for a later call, and ``results/`` once the reproduction has
finished. From the repository root, with each call's ``files_at`` folder in the order the calls ran:

    .venv/bin/python scripts/device/land.py CALL1 [CALL2 ...]   # --profile ci: a dry run's

1. ``.devresults/`` (git-ignored; what a fresh machine's next call carries) becomes the state of
   the newest call whose ``results.tgz`` holds a finished reproduction (else of the newest one
   that came back whole), with every benchmark measured in any call's ``bench.tgz`` (a call cut
   off before its ``results.tgz`` still brought those back). A ``.devresults/`` here whose calls
   are not the start of that state's is another history: it is left as it is, and nothing
   happens (move it away to land these calls).
2. It prints each call (its card, start, wall time and exit status, or that it was cut off), the
   benchmark table (:func:`colorlab.throughput.throughput_table`) and every ratio of two steps
   measured at the same size and process count (:func:`colorlab.throughput.throughput_ratios`).
   A ``-compiled`` or ``-graphs`` record whose step fell back to the eager one measured the
   eager step again: it is named and left out of ``results/`` (its numbers stay in the call's
   ``bench.txt``).
3. Once ``.devresults/results/`` holds a finished reproduction of the profile, it is staged with
   ``device/``: the benchmark records as ``bench-<size>-p<N>[-<step>].json`` (chapter 7 reads
   them), each call's ``device.txt``, ``bench.txt``, ``log.txt`` and ``gpu.csv`` as
   ``call<i>-*``, and ``calls.json`` (each call as above, and which call measured which
   benchmark). The staged folder must pass the checks of ``tests/test_recorded_results.py``
   (``tests/recorded_checks.py``), among them the eager step's benchmark with one process and
   several at 88x88 and 176x176 (``REQUIRED_BENCHMARKS``); then it replaces ``results/`` in one
   rename. ``--keep-bench`` fills required benchmarks not measured now from the previous
   ``results/device``, labelled as such in ``calls.json`` (chapter 7 shows the label). Until
   then ``results/`` is not touched, and it says what is missing.

Exit status 0: landed; 1: nothing to land yet (it says why); 2: a bad argument, files that are
not what reproduce.sh writes, or a folder that would fail the tests. After landing, build the book
(``bash scripts/build-book.sh``): chapters 7 to 9 show the new run.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import traceback
from pathlib import Path

from call_state import (STATE, Refused, call_record, describe, gather, read_json,
                        swap_folder)

ROOT = Path(__file__).resolve().parents[2]
#: what each call may bring back, kept in results/device as call<i>-<name>
CALL_FILES = ("device.txt", "bench.txt", "log.txt", "gpu.csv")
#: what every benchmark record holds (colorlab.bench.bench_train)
BENCH_FIELDS = {"device", "size", "processes", "images_per_s", "fraction_of_ceiling", "compile",
                "width"}
#: how a benchmark kept from the previous results/ is labelled (--keep-bench)
PREVIOUS = "measured with the previous recorded run"
#: a benchmark name's step suffix, in the words of colorlab.throughput.throughput_table
STEP_WORDS = {"": "", "-compiled": ", compiled", "-graphs": ", CUDA graph",
              "-compiled-graphs": ", compiled, CUDA graph", "-sync": ", per-step read"}
#: a benchmark's name as reproduce.sh gives it (``train-<name>.json``): size, processes, step
BENCH_NAME = re.compile(r"(\d+)-p(\d+)(" + "|".join(map(re.escape, STEP_WORDS)) + ")")


def _bench_order(name: str) -> tuple[int, int, int]:
    size, processes, step = BENCH_NAME.fullmatch(name).groups()
    return int(size), list(STEP_WORDS).index(step), int(processes)


def bench_words(name: str) -> str:
    """A benchmark's name as chapter 7's readers read it: ``"88-p9-graphs"`` ->
    ``"88x88, 9 processes, CUDA graph"``."""
    size, processes, step = BENCH_NAME.fullmatch(name).groups()
    return f"{size}x{size}, {processes} process{'es' if processes != '1' else ''}{STEP_WORDS[step]}"


def _unusable(name: str, record) -> str | None:
    """Why a benchmark record is not landed, or None."""
    if not BENCH_NAME.fullmatch(name):
        return "is not named as reproduce.sh names a benchmark"
    if not isinstance(record, dict) or not BENCH_FIELDS <= set(record):
        lacks = ", ".join(sorted(BENCH_FIELDS - set(record if isinstance(record, dict) else {})))
        return f"is not a record of colorlab bench train (it lacks {lacks})"
    # a failed compile or recording ran the eager step again
    if "compiled" in name and not record["compile"]:
        return "fell back to the eager step (not compiled)"
    if "graphs" in name and not record.get("cuda_graph"):
        return "fell back to the eager step (no CUDA graph recorded)"
    return None


def report(state: Path) -> dict[str, dict]:
    """Step 2 (after the calls): print the benchmark; returns the records to land, by chapter
    7's names (fallen-back ones left out)."""
    from colorlab.throughput import throughput_ratios, throughput_table

    records = {p.stem.removeprefix("train-"): read_json(p.read_text(), p)
               for p in sorted((state / "bench").glob("train-*.json"))}
    for name, r in list(records.items()):
        why = _unusable(name, r)
        if why:
            print(f"note: train-{name}.json {why}: left out of results/")
            del records[name]
    if not records:
        print("no benchmark was measured")
        return records
    print(f"\nbenchmark on {next(iter(records.values()))['device']}:\n")
    print(throughput_table(records))
    for c in throughput_ratios(records):
        print(f"{c['what']}: {c['size']}x{c['size']}, {c['processes']} process(es): "
              f"{c['ratio']:.2f}x ({c['new']['images_per_s']:,.0f} against "
              f"{c['old']['images_per_s']:,.0f} images/s)")
    return records


def _previous_bench(target: Path, missing: set[str]) -> tuple[dict[str, dict], dict[str, str]]:
    """The previous ``results/device`` records of ``missing``, and a label for each: the one the
    previous ``calls.json`` gave it if it was kept from an earlier run already, else the
    previous run's card and commit."""
    device = target / "device"
    ledger = read_json((device / "calls.json").read_text(), device / "calls.json") \
        if (device / "calls.json").is_file() else {}
    found = {name: read_json(path.read_text(), path) for name in sorted(missing)
             if (path := device / f"bench-{name}.json").is_file()}
    earlier = {name: source for name, source in ledger.get("benchmark_sources", {}).items()
               if source.startswith(PREVIOUS)}
    label = (f"{PREVIOUS} ({ledger.get('card', 'its card')}, commit "
             f"{str(ledger.get('git_commit', '?'))[:10]}), not with this one")
    return found, {name: earlier.get(name, label) for name in found}


def land(calls: list[Path], state: Path, records: dict[str, dict], measured_in: dict[str, int],
         ledger: list[dict], profile: str, target: Path, keep_bench: bool) -> None:
    """Step 3: stage the finished reproduction with its device records, check it as the
    committed one is checked, and put it in the place of ``target``."""
    from colorlab.reproduce import PROFILES
    from colorlab.results import BookResults

    finished = state / "results"
    if not (finished / "provenance.json").is_file():
        partial = state / ".results.partial"
        done = sorted(p.name for p in partial.iterdir() if p.is_dir()
                      and not p.name.startswith(".")) if partial.is_dir() else []
        raise Refused(f"the reproduction has not finished (data sets done: "
                      f"{', '.join(done) or 'none'}); {target} is unchanged. Run reproduce.sh "
                      f"again, carrying {STATE} on a fresh machine")
    provenance = read_json((finished / "provenance.json").read_text(), finished / "provenance.json")
    prof = PROFILES[profile]
    if provenance.get("profile") != prof.record():
        raise Refused(f"{finished} holds a reproduction of the "
                      f"{provenance.get('profile', {}).get('name')!r} profile, not of "
                      f"{profile!r}; {target} is unchanged", 2)
    import recorded_checks  # tests/: what the committed results/ must pass

    # which call's bench.tgz brought each record (one brought back only in a results.tgz: an
    # earlier call on that machine)
    sources = {name: f"measured in device call {measured_in[name]}" if name in measured_in
               else "measured in a device call of this reproduction" for name in records}
    missing = set(recorded_checks.REQUIRED_BENCHMARKS[profile]) - set(records)
    kept: dict[str, dict] = {}
    if missing and keep_bench:
        kept, labels = _previous_bench(target, missing)
        records = {**records, **kept}
        sources.update(labels)
        missing -= set(kept)
    if missing:
        raise Refused(f"the benchmark lacks {', '.join(sorted(missing))}; {target} is unchanged. "
                      f"Measure them with another call (the finished reproduction is not run "
                      f"again), or pass --keep-bench to keep the previous run's")
    staging = target.with_name(f".{target.name}.landing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(finished, staging)
        device = staging / "device"
        device.mkdir()
        for name, record in records.items():
            (device / f"bench-{name}.json").write_text(json.dumps(record, indent=1))
        for number, call in enumerate(calls, 1):
            for name in CALL_FILES:
                if (call / name).is_file():
                    shutil.copy2(call / name, device / f"call{number}-{name}")
        cards = sorted({r["card"] for r in ledger if r["card"]})
        summary = {"what": "the device calls of scripts/device/reproduce.sh whose files made this "
                           "folder (scripts/device/land.py), numbered as their call<i>-* files; "
                           "the reproduction's own calls are in provenance.json's call_log",
                   "card": " / ".join(cards) or provenance["device"], "torch": provenance["torch"],
                   "git_commit": provenance["git_commit"], "calls": ledger}
        by_source: dict[str, list[str]] = {}
        for name, source in sorted(sources.items(), key=lambda item: _bench_order(item[0])):
            by_source.setdefault(source, []).append(name)
        if len(by_source) > 1 or kept:  # chapter 7 says which rows came from where
            summary["benchmarks"] = {"; ".join(map(bench_words, names)): source
                                     for source, names in by_source.items()}
            summary["benchmark_sources"] = dict(sorted(sources.items()))
        (device / "calls.json").write_text(json.dumps(summary, indent=1))
        try:  # (the dry run's benchmark is of another width)
            recorded_checks.check_recorded_folder(BookResults(staging, True, "", provenance), prof,
                                                  prof.bench_width if profile == "full" else None)
        except Exception as err:  # an assertion of the tests, or a file they cannot read
            line = traceback.extract_tb(err.__traceback__)[-1]
            raise Refused(f"the landed folder would fail tests/test_recorded_results.py "
                          f"({type(err).__name__} {err} in {Path(line.filename).name}:"
                          f"{line.lineno}: {line.line}); {target} is unchanged", 2) from err
        swap_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"\nlanded in {target}: {len(provenance['runs'])} runs, {len(records)} benchmark "
          f"records; build the book (bash scripts/build-book.sh) and commit {target.name}/. "
          f"Then move {state} away (mv {STATE} {STATE}.landed): a later session's first call must "
          f"not carry this finished state")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", nargs="+", type=Path, help="each call's files_at folder, in order")
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from colorlab.reproduce import PROFILES

    parser.add_argument("--profile", default="full", choices=sorted(PROFILES),
                        help="the reproduction's profile (ci: a dry run on a CPU)")
    parser.add_argument("--keep-bench", action="store_true",
                        help="fill benchmarks not measured now from the previous results/device")
    parser.add_argument("--to", type=Path, default=ROOT / "results", help="the folder to replace")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="where .devresults/ lives (default: the repository root)")
    args = parser.parse_args(argv)
    try:
        missing = [str(c) for c in (*args.calls, args.root) if not c.is_dir()]
        if missing:
            raise Refused(f"not a folder: {', '.join(missing)} (give each call's files_at "
                          f"folder)", 2)
        ledger = [call_record(number, call) for number, call in enumerate(args.calls, 1)]
        for record in ledger:
            print(describe(record))
        state, measured_in = gather(args.calls, args.root)
        records = report(state)
        land(args.calls, state, records, measured_in, ledger, args.profile, args.to,
             args.keep_bench)
    except Refused as err:
        print(f"land.py: {err}", file=sys.stderr)
        return err.code
    except OSError as err:  # (a folder being replaced is put back: see swap_folder)
        print(f"land.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
