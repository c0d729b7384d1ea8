"""What the calls of scripts/device/reproduce.sh brought back, for scripts/device/land.py: the
``.devresults/`` state to continue from (the newest whole ``results.tgz``, a finished one first,
with every call's ``bench.tgz``), and what each call's folder says of the call.

A state here is replaced only by one whose history of calls (``calls.jsonl``) continues it; every
folder is replaced by renames, so a reader sees the old one or the new one.
"""
from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

STATE = ".devresults"
#: what reading a damaged or cut-off archive raises
DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error)


class Refused(Exception):
    """Nothing to land, with the reason; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def read_json(text: str, where: Path | str):
    """``text`` parsed as JSON; :class:`Refused` (exit 2) naming ``where`` when it is not."""
    try:
        return json.loads(text)
    except ValueError as err:
        raise Refused(f"{where} is not the JSON reproduce.sh writes ({err})", 2) from err


def _history(text: str, where: str) -> list[dict]:
    """The calls of a ``calls.jsonl`` (one JSON object per line)."""
    return [read_json(line, where) for line in text.splitlines() if line.strip()]


def swap_folder(new: Path, target: Path) -> None:
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


def _members(tar: tarfile.TarFile, archive: Path) -> list[str]:
    """The members of a tar that reproduce.sh wrote (all under ``.devresults/``); listing them
    reads the whole archive, so a damaged one raises one of :data:`DAMAGED`."""
    names = tar.getnames()
    strays = [n for n in names if n != STATE and not n.startswith(STATE + "/")]
    if strays:
        raise Refused(f"{archive} holds files outside {STATE}/ ({strays[0]}): it was not made "
                      f"by scripts/device/reproduce.sh", 2)
    return names


def _read_archive(archive: Path) -> tuple[list[str], list[dict]]:
    """The members of a tar that reproduce.sh wrote, and the call history it holds."""
    with tarfile.open(archive) as tar:
        names = _members(tar, archive)
        ledger = f"{STATE}/calls.jsonl"
        text = tar.extractfile(ledger).read().decode() if ledger in names else ""
    return names, _history(text, f"{archive}:{ledger}")


def _unpack(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            _members(tar, archive)
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
        swap_folder(staged / STATE, state)
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


def describe(record: dict) -> str:
    """One line for a :func:`call_record`."""
    ended = (f"{record['wall_seconds']} s of wall time, exit status {record['status']}"
             if record["wall_seconds"] is not None else "cut off before its end")
    return (f"call {record['call']}: {record['card'] or 'no GPU named'}, started "
            f"{record['started'] or '?'}, {ended}")
