#!/usr/bin/env python3
"""Land what a GPU session's calls of scripts/device/reproduce.sh brought back: the throughput
table for the note, ``.devresults/`` for a later call, and ``results/`` once the reproduction has
finished. From the repository root, with each call's ``files_at`` folder in the order the calls ran:

    python scripts/device/land.py CALL1 [CALL2 ...]          # --profile ci: a CPU dry run's

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
import importlib.util
import json
import re
import shutil
import sys
import tarfile
import tempfile
import traceback
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ".devresults"
#: what each call may bring back, kept in results/device as call<i>-<name>
CALL_FILES = ("device.txt", "bench.txt", "log.txt", "gpu.csv")
#: what every benchmark record holds (colorlab.bench.bench_train)
BENCH_FIELDS = {"device", "size", "processes", "images_per_s", "fraction_of_ceiling", "compile",
                "width"}
#: what reading a damaged or cut-off archive raises
DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error)


class Refused(Exception):
    """Nothing to land, with the reason; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _json(text: str, where: Path | str):
    try:
        return json.loads(text)
    except ValueError as err:
        raise Refused(f"{where} is not the JSON reproduce.sh writes ({err})", 2) from err


def _history(text: str, where: str) -> list[dict]:
    """The calls of a ``calls.jsonl`` (one JSON object per line)."""
    return [_json(line, where) for line in text.splitlines() if line.strip()]


def _swap(new: Path, target: Path) -> None:
    """Put folder ``new`` in the place of ``target`` (renames on one file system: a reader sees
    the old folder or the new one; a failed rename puts the old one back)."""
    old = target.with_name(f".{target.name.lstrip('.')}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _read_archive(archive: Path) -> tuple[list[str], list[dict]]:
    """The members of a tar that reproduce.sh wrote, and the call history it holds; reading
    them reads the whole archive, so a damaged one raises one of :data:`DAMAGED`."""
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        strays = [n for n in names if n != STATE and not n.startswith(STATE + "/")]
        if strays:
            raise Refused(f"{archive} holds files outside {STATE}/ ({strays[0]}): it was not "
                          f"made by scripts/device/reproduce.sh", 2)
        ledger = f"{STATE}/calls.jsonl"
        text = tar.extractfile(ledger).read().decode() if ledger in names else ""
    return names, _history(text, f"{archive}:{ledger}")


def _unpack(archive: Path, into: Path) -> None:
    try:
        _read_archive(archive)
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except DAMAGED as err:
        raise Refused(f"{archive} cannot be read ({err})", 2) from err


def _chosen_state(calls: list[Path]) -> tuple[Path, list[dict]]:
    """The ``results.tgz`` to continue from: the newest with a finished reproduction, else the
    newest that can be read; and its call history."""
    found = []
    for number, call in enumerate(calls, 1):
        archive = call / "results.tgz"
        if not archive.is_file():
            continue
        try:
            names, history = _read_archive(archive)
        except DAMAGED as err:
            print(f"note: call {number}'s results.tgz cannot be read ({err}): not used")
            continue
        found.append((f"{STATE}/results/provenance.json" in names, number, archive, history))
    if not found:
        raise Refused("no call brought back a whole results.tgz: nothing of the reproduction "
                      "came back (cut off before its end?); run the next call on the same warm "
                      "machine, or again")
    _, _, archive, history = max(found, key=lambda item: item[:2])
    return archive, history


def gather(calls: list[Path], root: Path) -> tuple[Path, dict[str, int]]:
    """Step 1: ``root/.devresults`` from the calls; returns it and, for each benchmark file, the
    call (its 1-based place among ``calls``) whose ``bench.tgz`` first held it."""
    archive, history = _chosen_state(calls)
    state = root / STATE
    here = _history((state / "calls.jsonl").read_text(), state / "calls.jsonl") \
        if (state / "calls.jsonl").is_file() else []
    if here != history[:len(here)]:
        raise Refused(f"{state} holds another or a later history of calls ({len(here)}, the "
                      f"last on {here[-1].get('date')}) than {archive} ({len(history)}): it is "
                      f"left as it is; move it away (mv {STATE} {STATE}.old) to land these "
                      f"calls", 2)
    with tempfile.TemporaryDirectory(dir=root, prefix=".land-") as tmp:
        staged = Path(tmp)
        _unpack(archive, staged)
        measured_in: dict[str, int] = {}
        for number, call in enumerate(calls, 1):
            if not (call / "bench.tgz").is_file():
                continue
            bench = staged / f"bench{number}"
            _unpack(call / "bench.tgz", bench)
            for record in sorted((bench / STATE / "bench").glob("train-*.json")):
                target = staged / STATE / "bench" / record.name
                # a later call keeps an earlier one's file unchanged; a different one (a call
                # that started afresh and measured again) replaces it, and is credited
                if not target.is_file() or target.read_bytes() != record.read_bytes() \
                        or record.stem.removeprefix("train-") not in measured_in:
                    measured_in[record.stem.removeprefix("train-")] = number
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(record, target)
            shutil.rmtree(bench)
        _swap(staged / STATE, state)
    return state, measured_in


def call_record(number: int, call: Path) -> dict:
    """What a call's folder says of it: card, start, wall time and exit status (None where the
    call was cut off before it printed them), and the files that came back."""
    device = (call / "device.txt").read_text() if (call / "device.txt").is_file() else ""
    log = (call / "log.txt").read_text() if (call / "log.txt").is_file() else ""
    lines = device.splitlines()
    card = lines[1] if len(lines) > 1 and lines[0].startswith("name,") else None
    started = re.search(r"^call started (\S+)", device, re.M)
    wall = re.search(r"^wall seconds of this call: (\d+)", log, re.M)
    status = re.search(r"^exit status of this call: (\d+)", log, re.M)
    return {"call": number, "card": card, "started": started and started.group(1),
            "wall_seconds": wall and int(wall.group(1)), "status": status and int(status.group(1)),
            "returned": sorted(p.name for p in call.iterdir() if p.is_file())}


def _describe(record: dict) -> str:
    ended = (f"{record['wall_seconds']} s of wall time, exit status {record['status']}"
             if record["wall_seconds"] is not None else "cut off before its end")
    return (f"call {record['call']}: {record['card'] or 'no GPU named'}, started "
            f"{record['started'] or '?'}, {ended}")


def report(state: Path) -> dict[str, dict]:
    """Step 2 (after the calls): print the benchmark; returns the records to land, by chapter
    7's names (fallen-back ones left out)."""
    from colorlab.throughput import throughput_ratios, throughput_table

    records = {p.stem.removeprefix("train-"): _json(p.read_text(), p)
               for p in sorted((state / "bench").glob("train-*.json"))}
    for name, r in list(records.items()):
        if not isinstance(r, dict) or not BENCH_FIELDS <= set(r):
            lacks = ", ".join(sorted(BENCH_FIELDS - set(r if isinstance(r, dict) else {})))
            print(f"note: train-{name}.json is not a record of colorlab bench train (it lacks "
                  f"{lacks}): left out of results/")
            del records[name]
    for name, r in list(records.items()):  # a failed compile or recording ran the eager step
        if ("compiled" in name and not r["compile"]) or ("graphs" in name
                                                         and not r.get("cuda_graph")):
            print(f"note: {name} fell back to the eager step ("
                  + ("not compiled" if "compiled" in name and not r["compile"] else
                     "no CUDA graph recorded") + "): left out of results/")
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


def _checks():
    """``tests/recorded_checks.py``: what the committed ``results/`` must pass."""
    spec = importlib.util.spec_from_file_location("recorded_checks",
                                                  ROOT / "tests" / "recorded_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _previous_bench(target: Path, missing: set[str]) -> tuple[dict[str, dict], dict[str, str]]:
    """The previous ``results/device`` records of ``missing``, and a label for each: the one the
    previous ``calls.json`` gave it if it was kept from an earlier run already, else the
    previous run's card and commit."""
    device = target / "device"
    ledger = _json((device / "calls.json").read_text(), device / "calls.json") \
        if (device / "calls.json").is_file() else {}
    found = {name: _json(path.read_text(), path) for name in sorted(missing)
             if (path := device / f"bench-{name}.json").is_file()}
    earlier = {name: source for names, source in ledger.get("benchmarks", {}).items()
               for name in names.split(", ") if source.startswith("measured with the previous")}
    label = (f"measured with the previous recorded run ({ledger.get('card', 'its card')}, "
             f"commit {str(ledger.get('git_commit', '?'))[:10]}), not with this one")
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
    provenance = _json((finished / "provenance.json").read_text(), finished / "provenance.json")
    prof = PROFILES[profile]
    if provenance.get("profile") != prof.record():
        raise Refused(f"{finished} holds a reproduction of the "
                      f"{provenance.get('profile', {}).get('name')!r} profile, not of "
                      f"{profile!r}; {target} is unchanged", 2)
    commit = str(provenance.get("git_commit", ""))
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise Refused(f"{finished} names the commit {commit!r}, not one commit of 40 hex digits "
                      f"(each call of one reproduction must carry the same .devpack/commit, "
                      f"written once after committing); {target} is unchanged", 2)
    checks = _checks()
    # which call's bench.tgz brought each record (one brought back only in a results.tgz: an
    # earlier call on that machine)
    sources = {name: f"measured in device call {measured_in[name]}" if name in measured_in
               else "measured in a device call of this reproduction" for name in records}
    missing = set(checks.REQUIRED_BENCHMARKS[profile]) - set(records)
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
        for name, source in sorted(sources.items()):
            by_source.setdefault(source, []).append(name)
        if len(by_source) > 1 or any(s.startswith("measured with the previous") for s in
                                     by_source):  # chapter 7 says which rows came from where
            summary["benchmarks"] = {", ".join(names): source
                                     for source, names in by_source.items()}
        (device / "calls.json").write_text(json.dumps(summary, indent=1))
        results = BookResults(staging, True, "", provenance)
        try:
            checks.check_provenance(results, prof)
            for dataset in provenance["datasets"]:
                checks.check_dataset(results, dataset, prof)
            checks.check_table1(results, prof)
            for name in records:  # (the dry run's benchmark is of another width)
                checks.check_benchmark(results, name, prof.bench_width if profile == "full"
                                       else None)
            checks.check_small(staging)
        except Exception as err:  # an assertion of the tests, or a file they cannot read
            line = traceback.extract_tb(err.__traceback__)[-1]
            raise Refused(f"the landed folder would fail tests/test_recorded_results.py "
                          f"({type(err).__name__} {err} in {Path(line.filename).name}:"
                          f"{line.lineno}: {line.line}); {target} is unchanged", 2) from err
        _swap(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"\nlanded in {target}: {len(provenance['runs'])} runs, {len(records)} benchmark "
          f"records; build the book (bash scripts/build-book.sh) and commit {target.name}/. "
          f"Then move {state} away (mv {STATE} {STATE}.landed): a later session's first call must "
          f"not carry this finished state")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", nargs="+", type=Path, help="each call's files_at folder, in order")
    sys.path.insert(0, str(ROOT))
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
            print(_describe(record))
        state, measured_in = gather(args.calls, args.root)
        records = report(state)
        land(args.calls, state, records, measured_in, ledger, args.profile, args.to,
             args.keep_bench)
    except Refused as err:
        print(f"land.py: {err}", file=sys.stderr)
        return err.code
    except OSError as err:  # (a folder being replaced is put back: see _swap)
        print(f"land.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
