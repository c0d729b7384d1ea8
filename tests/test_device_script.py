"""scripts/device/reproduce.sh, the one command a GPU session runs, as a dry run on the CPU (its
``ci`` profile): two calls on the same "machine" (one folder), as the plan in its header runs
them. What a CPU cannot show (MPS, a recorded graph) is for the device; this checks what comes
back and what a second call keeps."""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what a call may leave in $OUT: the device tool brings back at most 8 files
OUT_FILES = {"device.txt", "bench.txt", "bench.tgz", "gpu.csv", "log.txt", "results.tgz"}


def _call(tree: Path, out: Path, **env) -> subprocess.CompletedProcess:
    out.mkdir()
    settings = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "OUT": str(out), "COLORLAB_DEVICE_PROFILE": "ci", "COLORLAB_DEVICE_PROCESSES": "2",
                "COLORLAB_DEVICE_BENCH": "none", "COLORLAB_DEVICE_GRAPHS": "1",
                "COLORLAB_DEVICE_BENCH_AFTER": "eager; graphs", **env}
    started = time.monotonic()
    done = subprocess.run(["bash", "scripts/device/reproduce.sh"], cwd=tree, capture_output=True,
                          text=True, timeout=1200, env={**os.environ, **settings})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # nothing it started holds the call's output open after the script ends (a watchdog's sleep
    # once did, to the call's limit)
    script = int(re.search(r"wall seconds of this call: (\d+)", done.stdout).group(1))
    assert time.monotonic() - started < script + 30
    assert {p.name for p in out.iterdir()} <= OUT_FILES
    return done


def _measured(out: Path) -> set[str]:
    with tarfile.open(out / "bench.tgz") as tar:
        return {Path(name).name for name in tar.getnames() if name.endswith(".json")}


def test_two_calls_finish_once_keep_what_is_done_and_bring_back_few_files(tmp_path):
    tree = tmp_path / "repo"
    for part in ("colorlab", "scripts"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / ".devpack").mkdir()
    (tree / ".devpack" / "commit").write_text("0" * 40 + "\n")

    # call 1: the graph check (a CPU records nothing: "do not use"), the reproduction, then the
    # benchmark's rounds in the time left
    _call(tree, tmp_path / "out1")
    verdict = (tree / ".devresults" / "graphs-check.txt").read_text()
    assert verdict.startswith("do not use CUDA graphs (CUDA graph recorded: False")
    assert (tree / ".devresults" / "results" / "provenance.json").is_file()
    both = {"train-16-p1.json", "train-16-p2.json", "train-16-p1-graphs.json",
            "train-16-p2-graphs.json"}
    assert _measured(tmp_path / "out1") == both
    bench = (tmp_path / "out1" / "bench.txt").read_text()
    # round 1 (eager, 1 and 2 processes) before round 2 (the graph step)
    assert bench.index("2 models trained at once") < bench.index("--cuda-graphs: no CUDA graph")

    # call 2 on the warm machine: nothing is trained or measured again
    _call(tree, tmp_path / "out2")
    device = (tmp_path / "out2" / "device.txt").read_text()
    assert "reproduce: finished by an earlier call" in device
    assert "graph recorded" not in device  # no second check
    assert (tmp_path / "out2" / "bench.txt").read_text().count("kept .devresults/bench/") == 4

    # a call after one cut off before results/ was written: the check's verdict is kept
    shutil.rmtree(tree / ".devresults" / "results")
    _call(tree, tmp_path / "out3", COLORLAB_DEVICE_BENCH_AFTER="none")
    device = (tmp_path / "out3" / "device.txt").read_text()
    assert "CUDA graphs: the check of an earlier call on this kind of device says do not use" \
        in device
    assert (tree / ".devresults" / "results" / "provenance.json").is_file()
    calls = (tree / ".devresults" / "calls.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in calls] == [0, 0, 0]
    with tarfile.open(tmp_path / "out3" / "results.tgz") as tar:
        assert ".devresults/results/provenance.json" in tar.getnames()
