"""scripts/device/reproduce.sh, the one command a GPU session runs, as a dry run on the CPU (its
``ci`` profile): calls on the same "machine" (one folder), as the plan in its header runs them,
and scripts/device/kept.py, which says what a call keeps of an earlier one. What a CPU cannot show
(MPS, a recorded graph) is for the device; this checks what comes back and what is kept."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from recorded_checks import check_recorded_folder
from colorlab.reproduce import PROFILES
from colorlab.report import DATASETS
from colorlab.results import BookResults
from colorlab.source_code import source_hash

ROOT = Path(__file__).resolve().parents[1]
#: what a call may leave in $OUT: the device tool brings back at most 8 files
OUT_FILES = {"device.txt", "bench.txt", "bench.tgz", "gpu.csv", "log.txt", "results.tgz"}


def _kept():
    spec = importlib.util.spec_from_file_location("kept", ROOT / "scripts" / "device" / "kept.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(tree: Path, out: Path, **env) -> str:
    """One call of the script in ``tree`` with ``$OUT`` = ``out``; returns its standard output."""
    out.mkdir()
    settings = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "OUT": str(out), "COLORLAB_DEVICE_PROFILE": "ci", "COLORLAB_DEVICE_SIZES": "16 32",
                "COLORLAB_DEVICE_BENCH_PROCESSES": "1", "COLORLAB_DEVICE_BENCH": "none",
                "COLORLAB_DEVICE_GRAPHS": "1", "COLORLAB_DEVICE_BENCH_AFTER": "eager; graphs",
                **env}
    started = time.monotonic()
    done = subprocess.run(["bash", "scripts/device/reproduce.sh"], cwd=tree, capture_output=True,
                          text=True, timeout=1200, env={**os.environ, **settings})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {p.name for p in out.iterdir()} <= OUT_FILES
    # nothing it started holds the call's output open after the script ends (a watchdog's sleep
    # once did, to the call's limit)
    script = int(re.search(r"wall seconds of this call: (\d+)", done.stdout).group(1))
    assert time.monotonic() - started < script + 30
    return done.stdout


def _other_code(state: Path) -> None:
    """Make ``state``'s results/ look made by other code (its data sets stay kept)."""
    path = state / "results" / "provenance.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "sources": "0" * 12}))


def _measured(out: Path) -> set[str]:
    with tarfile.open(out / "bench.tgz") as tar:
        return {Path(name).name for name in tar.getnames() if name.endswith(".json")}


def test_calls_finish_once_keep_what_is_done_and_bring_back_few_files(tmp_path):
    tree = tmp_path / "repo"
    for part in ("colorlab", "scripts"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / ".devpack").mkdir()
    (tree / ".devpack" / "commit").write_text("0" * 40 + "\n")
    state = tree / ".devresults"
    measured = ["train-16-p1.json", "train-32-p1.json", "train-16-p1-graphs.json",
                "train-32-p1-graphs.json"]  # round 1 at both sizes, then round 2

    # call 1: the graph check (a CPU records nothing: "do not use", kept), the reproduction,
    # then the benchmark's rounds in the time left
    _call(tree, tmp_path / "out1")
    device = (tmp_path / "out1" / "device.txt").read_text()
    assert "train loss" in device and "kept for the next call: do not use CUDA graphs" in device
    verdict = json.loads((state / "graphs-check.json").read_text())
    assert verdict["use"] is False and verdict["key"]["device"] == "cpu"
    assert (state / "results" / "provenance.json").is_file()
    assert _measured(tmp_path / "out1") == set(measured)

    # call 2 on the warm machine: nothing is trained, checked or measured again
    _call(tree, tmp_path / "out2")
    device = (tmp_path / "out2" / "device.txt").read_text()
    assert "reproduce: finished by an earlier call of this code" in device
    assert "train loss" not in device
    kept = re.findall(r"kept \.devresults/bench/(\S+)", (tmp_path / "out2" / "bench.txt").read_text())
    assert kept == measured

    # here, after the session: the two calls' files landed in results/ (scripts/device/land.py)
    _land_and_check(tmp_path, [tmp_path / "out1", tmp_path / "out2"], state)

    # results/ made by other code is not kept; the kept verdict decides on graphs, no check
    _other_code(state)
    stdout = _call(tree, tmp_path / "out3", COLORLAB_DEVICE_BENCH_AFTER="none")
    device = (tmp_path / "out3" / "device.txt").read_text()
    assert "has another sources" in device
    assert "the check of an earlier call on this device and code says" in device
    assert "train loss" not in device and "--cuda-graphs" not in stdout
    assert (state / "results" / "provenance.json").is_file()

    # a kept "use" turns the graphs on (the CPU then runs the step eagerly on static inputs)
    _other_code(state)
    (state / "graphs-check.json").write_text(json.dumps({**verdict, "use": True}))
    stdout = _call(tree, tmp_path / "out4", COLORLAB_DEVICE_BENCH_AFTER="none")
    assert "train loss" not in (tmp_path / "out4" / "device.txt").read_text()
    assert "options: --cuda-graphs" in stdout

    calls = (state / "calls.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in calls] == [0, 0, 0, 0]
    with tarfile.open(tmp_path / "out4" / "results.tgz") as tar:
        assert ".devresults/results/provenance.json" in tar.getnames()


def _land(calls: list[Path], here: Path, target: Path, *options: str
          ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "device" / "land.py"),
                           *map(str, calls), "--profile", "ci", "--root", str(here),
                           "--to", str(target), *options], capture_output=True, text=True,
                          timeout=300)


def _land_and_check(tmp_path: Path, calls: list[Path], state: Path) -> None:
    """Land the calls' files as a session does, and check results/ as the committed one is."""
    here, target = tmp_path / "here", tmp_path / "results"
    (target / "device").mkdir(parents=True)
    (target / "device" / "bench-88-p1.json").write_text("{}")  # the previous recorded run's
    here.mkdir()
    done = _land(calls, here, target)
    assert done.returncode == 0, done.stdout + done.stderr
    for number in (1, 2):
        assert re.search(rf"^call {number}: no GPU named, started 20\S+, \d+ s of wall time, exit "
                         rf"status 0$", done.stdout, re.M), done.stdout
    assert "| size | processes | images/s | share of the ceiling |" in done.stdout
    # a CPU records no graph: those records measured the eager step again, and are left out
    for size in (16, 32):
        assert (f"note: train-{size}-p1-graphs.json fell back to the eager step (no CUDA graph "
                f"recorded): left out of results/") in done.stdout
    provenance = json.loads((target / "provenance.json").read_text())
    assert provenance == json.loads((state / "results" / "provenance.json").read_text())
    results = BookResults(target, True, "", provenance)
    assert set(results.benchmarks()) == {"16-p1", "32-p1"}
    assert set(provenance["datasets"]) == set(DATASETS)
    check_recorded_folder(results, PROFILES["ci"], 0.0625)
    device = {p.name for p in (target / "device").iterdir()}
    assert {f"call{i}-{n}" for i in (1, 2) for n in ("device.txt", "bench.txt", "log.txt")} \
        <= device
    ledger = json.loads((target / "device" / "calls.json").read_text())
    assert [(c["call"], c["status"]) for c in ledger["calls"]] == [(1, 0), (2, 0)]
    assert ledger["git_commit"] == "0" * 40
    assert results.benchmark_sources() == {}  # all from call 1: chapter 7 names no source
    # the previous folder is replaced whole; nothing half-made is left; .devresults is here
    assert "bench-88-p1.json" not in device
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert (here / ".devresults" / "results" / "provenance.json").is_file()
    assert [p.name for p in here.iterdir()] == [".devresults"]

    # calls that brought back no benchmark (16-p1 is required): no landing, or, asked, the
    # previous results/'s record, labelled as such, also when it is kept again
    call = tmp_path / "out-without-bench"
    call.mkdir()
    with tarfile.open(calls[-1] / "results.tgz") as old, \
            tarfile.open(call / "results.tgz", "w:gz") as new:
        for member in old.getmembers():
            if "/bench/train-" not in member.name:
                new.addfile(member, old.extractfile(member) if member.isfile() else None)
    previous = (target / "device" / "bench-16-p1.json").read_text()
    done = _land([call], here, target)
    assert done.returncode == 1 and "the benchmark lacks 16-p1" in done.stderr
    assert (target / "device" / "calls.json").read_text() == json.dumps(ledger, indent=1)
    label = ("measured with the previous recorded run (CPU (2 threads), commit 0000000000), not "
             "with this one")
    for _ in range(2):
        done = _land([call], here, target, "--keep-bench")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (target / "device" / "bench-16-p1.json").read_text() == previous
        assert BookResults(target, True, "", provenance).benchmark_sources() == {
            "16x16, 1 process": label}
        # kept again, it keeps its label, not the card of the run that kept it
        path = target / "device" / "calls.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "card": "another card"}))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _archive(folder: Path, files: dict[str, str]) -> Path:
    """A call's folder whose results.tgz holds ``files`` (path -> text)."""
    folder.mkdir(parents=True)
    source = folder.with_name(folder.name + "-tree")
    with tarfile.open(folder / "results.tgz", "w:gz") as tar:
        for name, text in files.items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_text(text)
            tar.add(source / name, arcname=name)
    return folder


CALL = json.dumps({"date": "2026-12-06T10:00:00Z", "wall_seconds": 575, "status": 130}) + "\n"
UNFINISHED = {".devresults/calls.jsonl": CALL, ".devresults/.results.partial/calls.json": "{}",
              ".devresults/.results.partial/celeba/dataset.json": "{}"}


BENCH = {"device": "cpu", "size": 16, "processes": 1, "images_per_s": 1.0, "compile": False,
         "fraction_of_ceiling": 0.1, "width": 0.0625, "images_per_s_windows": [1.0] * 5}


def _finished(profile: str, commit: str = "0" * 40, **more: str) -> dict[str, str]:
    """An archive's files with a finished reproduction of ``profile`` (a stand-in)."""
    provenance = {"profile": PROFILES[profile].record(), "device": "cpu", "torch": "2",
                  "git_commit": commit}
    return {**UNFINISHED, ".devresults/results/provenance.json": json.dumps(provenance), **more}


def test_landing_an_unfinished_reproduction_leaves_results_as_they_are(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "provenance.json").write_text("the recorded run")
    (tmp_path / "here").mkdir()
    done = _land([_archive(tmp_path / "call1", UNFINISHED)], tmp_path / "here", target)
    assert done.returncode == 1
    assert "has not finished (data sets done: celeba)" in done.stderr
    assert "call 1: no GPU named, started ?, cut off before its end" in done.stdout
    assert [p.name for p in target.iterdir()] == ["provenance.json"]
    assert (target / "provenance.json").read_text() == "the recorded run"
    # what came back is here for the next call on a fresh machine
    assert (tmp_path / "here" / ".devresults" / ".results.partial" / "celeba").is_dir()


def test_landing_continues_from_the_newest_whole_and_finished_state(tmp_path):
    here, target = tmp_path / "here", tmp_path / "results"
    here.mkdir()
    # call 2 (a fresh machine that was not handed call 1's state) finished nothing; call 3's
    # archive was cut off midway: call 1's finished reproduction is the one to land
    calls = [_archive(tmp_path / "call1", _finished("ci")),
             _archive(tmp_path / "call2", UNFINISHED), _archive(tmp_path / "call3", UNFINISHED)]
    whole = (calls[2] / "results.tgz").read_bytes()
    (calls[2] / "results.tgz").write_bytes(whole[:len(whole) // 2])
    done = _land(calls, here, target)
    assert "note: call 3's results.tgz cannot be read" in done.stdout
    assert done.returncode == 1 and "the benchmark lacks 16-p1" in done.stderr
    assert (here / ".devresults" / "results" / "provenance.json").is_file()
    assert not target.exists()


@pytest.mark.parametrize("files, code, message", [
    (_finished("full"), 2, "holds a reproduction of the 'full' profile, not of 'ci'"),
    (_finished("ci", **{".devresults/bench/train-16-p1.json": json.dumps({"width": 1})}), 1,
     "note: train-16-p1.json is not a record of colorlab bench train (it lacks compile, device,"),
    (_finished("ci", **{".devresults/bench/train-16-p1-fast.json": json.dumps(BENCH)}), 1,
     "note: train-16-p1-fast.json is not named as reproduce.sh names a benchmark"),
    (_finished("ci", "a" * 40 + " + " + "b" * 40,
               **{".devresults/bench/train-16-p1.json": json.dumps(BENCH)}), 2,
     f"names the commit '{'a' * 40} + {'b' * 40}', not one commit of 40 hex digits (every call"),
    (_finished("ci", **{".devresults/bench/train-16-p1.json": json.dumps(BENCH)}), 2,
     "the landed folder would fail tests/test_recorded_results.py (KeyError 'datasets' in "
     "recorded_checks.py:"),
])
def test_landing_checks_the_folder_before_it_replaces_results(tmp_path, files, code, message):
    target = tmp_path / "results"
    target.mkdir()
    (target / "provenance.json").write_text("the recorded run")
    (tmp_path / "here").mkdir()
    done = _land([_archive(tmp_path / "call", files)], tmp_path / "here", target)
    assert done.returncode == code and message in done.stdout + done.stderr, done.stderr
    assert [p.name for p in target.iterdir()] == ["provenance.json"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("files, message", [
    ({".devresults/calls.jsonl": CALL, "elsewhere.txt": "x"}, "holds files outside .devresults/"),
    ({".devresults/calls.jsonl": CALL.replace("575", "574")},
     "holds another or a later history of calls (2, the last on 2026-12-06T10:00:00Z)"),
])
def test_landing_refuses_a_foreign_archive_or_another_history_and_keeps_what_is_here(
        tmp_path, files, message):
    here = tmp_path / "here"
    (here / ".devresults").mkdir(parents=True)
    (here / ".devresults" / "calls.jsonl").write_text(CALL * 2)
    done = _land([_archive(tmp_path / "call", files)], here, tmp_path / "results")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert (here / ".devresults" / "calls.jsonl").read_text() == CALL * 2
    assert not (tmp_path / "results").exists()
    assert [p.name for p in here.iterdir()] == [".devresults"]


def test_landing_needs_the_calls_folders(tmp_path):
    done = _land([tmp_path / "nowhere"], tmp_path, tmp_path / "results")
    assert done.returncode == 2 and f"not a folder: {tmp_path / 'nowhere'}" in done.stderr
    (tmp_path / "empty").mkdir()
    done = _land([tmp_path / "empty"], tmp_path, tmp_path / "results")
    assert done.returncode == 1 and "no call brought back a whole results.tgz" in done.stderr


def test_an_unknown_benchmark_path_stops_the_call_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "scripts" / "device" / "reproduce.sh")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OUT": str(out), "COLORLAB_DEVICE_PROFILE": "ci",
                               "COLORLAB_DEVICE_BENCH_AFTER": "eager; graph"})
    assert done.returncode == 2
    assert "unknown path 'graph'" in done.stdout and not out.exists()


@pytest.mark.parametrize("change, kept", [
    ({}, True),
    ({"sources": "0" * 12}, False),
    ({"profile": PROFILES["full"].record()}, False),
    ({"classifier": None}, False),
])
def test_a_finished_reproduction_is_kept_only_for_the_same_code_and_profile(tmp_path, change,
                                                                            kept):
    provenance = {"profile": PROFILES["ci"].record(), "classifier": "efficientnet_lite0",
                  "sources": source_hash(), "device": "cpu", **change}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "provenance.json").write_text(json.dumps(provenance))
    assert _kept().finished_results("ci", tmp_path)[0] is kept
    assert _kept().finished_results("ci", tmp_path / "nowhere")[0] is False


def test_only_a_printed_verdict_is_kept_and_only_for_this_device_and_code(tmp_path):
    kept = _kept()
    log = tmp_path / "check.log"
    log.write_text("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    assert kept.save_graphs(log, tmp_path)[0] is False  # a crash decides nothing
    assert kept.kept_graphs(tmp_path)[0] is None
    log.write_text("epoch 1: ...\nCUDA graph recorded: True; losses alike: True; training loss "
                   "fell by 0.1 with the graph, 0.1 without -> use CUDA graphs\n")
    assert kept.save_graphs(log, tmp_path)[0] is True
    assert kept.kept_graphs(tmp_path)[0] is True
    saved = json.loads((tmp_path / "graphs-check.json").read_text())
    for other in ({"device": "NVIDIA H100 80GB HBM3"}, {"sources": "0" * 12}, {"torch": "2.0"}):
        (tmp_path / "graphs-check.json").write_text(
            json.dumps({**saved, "key": {**saved["key"], **other}}))
        assert kept.kept_graphs(tmp_path)[0] is None  # the check runs again
