#!/usr/bin/env python3
"""Land what a GPU session's calls of scripts/device/reproduce.sh brought back: the throughput
table for the note, ``.devresults/`` for a later call, and ``results/`` once the reproduction has
finished. From the repository root, with each call's ``files_at`` folder in the order the calls ran:

    python scripts/device/land.py CALL1 [CALL2 ...]          # --profile ci: a CPU dry run's

1. ``.devresults/`` (git-ignored; what a fresh machine's next call carries) becomes the newest
   ``results.tgz`` of the calls, with every benchmark measured in any call's ``bench.tgz`` (a
   call cut off before its ``results.tgz`` still brought those back). A ``.devresults/`` here
   that has seen more calls than that ``results.tgz`` is left as it is, and nothing else happens.
2. It prints each call's wall time and exit status, the benchmark table
   (:func:`colorlab.throughput.throughput_table`) and every ratio of two steps measured at the
   same size and process count (:func:`colorlab.throughput.throughput_ratios`).
3. Once ``.devresults/results/`` holds a finished reproduction of the profile, it replaces
   ``results/`` in one rename, together with ``results/device/``: the benchmark records as
   ``bench-<size>-p<N>[-<step>].json`` (chapter 7 reads them), each call's ``device.txt``,
   ``bench.txt``, ``log.txt`` and ``gpu.csv`` as ``call<i>-*``, and ``calls.json`` (each call's
   date, wall time and exit status, and which call measured which benchmark). Until then
   ``results/`` is not touched, and it says what is missing.

Exit status 0: landed; 1: nothing to land yet; 2: a bad argument or an unreadable archive. Then
chapters 7 to 9 show the new run when the book is built (``bash scripts/build-book.sh``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ".devresults"
#: what each call may bring back, kept in results/device as call<i>-<name>
CALL_FILES = ("device.txt", "bench.txt", "log.txt", "gpu.csv")


class Refused(Exception):
    """Nothing to land, with the reason; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _unpack(archive: Path, into: Path) -> None:
    """Extract a tar made by reproduce.sh (members under ``.devresults/`` only)."""
    try:
        with tarfile.open(archive) as tar:
            strays = [m.name for m in tar.getmembers()
                      if m.name != STATE and not m.name.startswith(STATE + "/")]
            if strays:
                raise Refused(f"{archive} holds files outside {STATE}/ ({strays[0]}): it was not "
                              f"made by scripts/device/reproduce.sh", 2)
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise Refused(f"{archive} cannot be read ({err})", 2) from err


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


def _json(text: str, where: Path):
    try:
        return json.loads(text)
    except ValueError as err:
        raise Refused(f"{where} is not the JSON reproduce.sh writes ({err})", 2) from err


def _calls_seen(state: Path) -> list[dict]:
    """The calls the script recorded in ``state`` (one JSON object per line)."""
    path = state / "calls.jsonl"
    return [_json(line, path) for line in path.read_text().splitlines()] if path.is_file() else []


def gather(calls: list[Path], root: Path) -> tuple[Path, dict[str, int]]:
    """Step 1: ``root/.devresults`` from the calls; returns it and, for each benchmark file, the
    (1-based) call whose ``bench.tgz`` first held it."""
    with_results = [c for c in calls if (c / "results.tgz").is_file()]
    if not with_results:
        raise Refused("no call brought back a results.tgz: nothing of the reproduction came "
                      "back (cut off before its end?); run the next call on the same warm "
                      "machine, or again")
    with tempfile.TemporaryDirectory(dir=root, prefix=".land-") as tmp:
        staged = Path(tmp)
        _unpack(with_results[-1] / "results.tgz", staged)
        measured_in: dict[str, int] = {}
        for number, call in enumerate(calls, 1):
            if (call / "bench.tgz").is_file():
                bench = Path(tmp) / f"bench{number}"
                _unpack(call / "bench.tgz", bench)
                for record in sorted((bench / STATE / "bench").glob("train-*.json")):
                    measured_in.setdefault(record.name, number)
                    target = staged / STATE / "bench" / record.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(record, target)  # a later call's measurement replaces one
                shutil.rmtree(bench)
        state, here = root / STATE, len(_calls_seen(root / STATE))
        if here > len(_calls_seen(staged / STATE)):
            raise Refused(f"{state} has seen {here} calls, more than the newest results.tgz "
                          f"({with_results[-1]}): it is newer and is left as it is; pass every "
                          f"call's folder, the newest last", 2)
        _swap(staged / STATE, state)
    return state, measured_in


def report(state: Path) -> dict[str, dict]:
    """Step 2: print the calls and the benchmark; returns the records by chapter 7's names."""
    from colorlab.throughput import throughput_ratios, throughput_table

    for number, call in enumerate(_calls_seen(state), 1):
        print(f"call {number}: {call['date']}, {call['wall_seconds']} s of wall time, "
              f"exit status {call['status']}")
    records = {p.stem.removeprefix("train-"): _json(p.read_text(), p)
               for p in sorted((state / "bench").glob("train-*.json"))}
    if not records:
        print("no benchmark was measured")
        return records
    for name, r in records.items():  # a failed compile or recording falls back to eager steps
        if "compiled" in name and not r["compile"]:
            print(f"note: {name} did not compile: it measured the eager step")
        if "graphs" in name and not r.get("cuda_graph"):
            print(f"note: {name} recorded no CUDA graph: it measured the step launched kernel "
                  f"by kernel")
    print(f"\nbenchmark on {next(iter(records.values()))['device']}:\n")
    print(throughput_table(records))
    for c in throughput_ratios(records):
        print(f"{c['what']}: {c['size']}x{c['size']}, {c['processes']} process(es): "
              f"{c['ratio']:.2f}x ({c['new']['images_per_s']:,.0f} against "
              f"{c['old']['images_per_s']:,.0f} images/s)")
    return records


def land(calls: list[Path], state: Path, records: dict[str, dict], measured_in: dict[str, int],
         profile: str, target: Path) -> None:
    """Step 3: replace ``target`` with the finished reproduction and its device records."""
    from colorlab.reproduce import PROFILES

    finished = state / "results"
    if not (finished / "provenance.json").is_file():
        partial = state / ".results.partial"
        done = sorted(p.name for p in partial.iterdir() if p.is_dir()
                      and not p.name.startswith(".")) if partial.is_dir() else []
        raise Refused(f"the reproduction has not finished (data sets done: "
                      f"{', '.join(done) or 'none'}); {target} is unchanged. Run reproduce.sh "
                      f"again, carrying {STATE} on a fresh machine")
    provenance = _json((finished / "provenance.json").read_text(), finished / "provenance.json")
    if provenance.get("profile") != PROFILES[profile].record():
        raise Refused(f"{finished} holds a reproduction of the "
                      f"{provenance.get('profile', {}).get('name')!r} profile, not of "
                      f"{profile!r}; {target} is unchanged")
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
        smi = calls[0] / "device.txt"  # nvidia-smi's CSV: a header, then the card
        lines = smi.read_text().splitlines() if smi.is_file() else []
        card = lines[1] if len(lines) > 1 and lines[0].startswith("name,") else \
            provenance["device"]
        ledger = {"what": "the device calls of scripts/device/reproduce.sh that made this folder "
                          "(scripts/device/land.py); the reproduction's own calls are in "
                          "provenance.json's call_log",
                  "card": card, "torch": provenance["torch"],
                  "git_commit": provenance["git_commit"], "calls": _calls_seen(state)}
        by_call: dict[int, list[str]] = {}
        for file, number in measured_in.items():
            by_call.setdefault(number, []).append(file.removeprefix("train-")
                                                  .removesuffix(".json"))
        if len(by_call) > 1:  # chapter 7 says which rows came from which call
            ledger["benchmarks"] = {", ".join(names): f"measured in device call {number}"
                                    for number, names in sorted(by_call.items())}
        (device / "calls.json").write_text(json.dumps(ledger, indent=1))
        _swap(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"\nlanded in {target}: {len(provenance['runs'])} runs, {len(records)} benchmark "
          f"records; build the book (bash scripts/build-book.sh) and commit {target.name}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", nargs="+", type=Path, help="each call's files_at folder, in order")
    sys.path.insert(0, str(ROOT))
    from colorlab.reproduce import PROFILES

    parser.add_argument("--profile", default="full", choices=sorted(PROFILES),
                        help="the reproduction's profile (ci: a dry run on a CPU)")
    parser.add_argument("--to", type=Path, default=ROOT / "results", help="the folder to replace")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="where .devresults/ lives (default: the repository root)")
    args = parser.parse_args(argv)
    try:
        missing = [str(c) for c in (*args.calls, args.root) if not c.is_dir()]
        if missing:
            raise Refused(f"not a folder: {', '.join(missing)} (give each call's files_at "
                          f"folder)", 2)
        state, measured_in = gather(args.calls, args.root)
        records = report(state)
        land(args.calls, state, records, measured_in, args.profile, args.to)
    except Refused as err:
        print(f"land.py: {err}", file=sys.stderr)
        return err.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
