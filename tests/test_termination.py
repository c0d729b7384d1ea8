"""``SIGTERM`` (``kill``, ``timeout``, a batch system's stop) cleans up as Ctrl-C does: the CLI
exits with 143 after its clean-ups, a fetch leaves no temporary folder, and worker processes stop
with their parent. What a ``kill -9`` leaves, the next fetch removes."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from colorlab.results_fetch import fetch_results

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals only")


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _slow_git(tmp_path: Path) -> dict:
    """An environment whose ``git fetch`` hangs (after writing its pid to ``fetching``), as a slow network
    does; every other git command is the real one."""
    real = shutil.which("git")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = fetch ]; then echo $$ > "{tmp_path}/fetching"; exec sleep 300; fi
        exec "{real}" "$@"
        """))
    (bin_dir / "git").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_a_terminated_fetch_leaves_nothing_and_exits_143(tmp_path):
    env = _slow_git(tmp_path)
    out = tmp_path / "here" / "results"
    proc = subprocess.Popen([sys.executable, "-m", "colorlab", "results", "fetch", "--out",
                             str(out), "--repository", "file:///nowhere", "--ref", "main"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (tmp_path / "fetching").exists())
        assert [p.name for p in out.parent.iterdir()][0].startswith(".fetch-")  # it is working
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert stderr == "colorlab: terminated (SIGTERM)\n"
    assert list(out.parent.iterdir()) == []  # no temporary folder, no results/


def test_the_next_fetch_removes_what_a_killed_fetch_left(tmp_path):
    from test_results_fetch import make_repo

    make_repo(tmp_path / "repo")
    env = _slow_git(tmp_path)
    out = tmp_path / "here" / "results"
    proc = subprocess.Popen([sys.executable, "-m", "colorlab", "results", "fetch", "--out",
                             str(out), "--repository", "file:///nowhere", "--ref", "main"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: (tmp_path / "fetching").exists())
    proc.kill()  # kill -9: no clean-up can run
    proc.wait(timeout=60)
    os.kill(int((tmp_path / "fetching").read_text()), signal.SIGKILL)  # its orphaned git
    [left] = out.parent.iterdir()
    assert left.name.startswith(f".fetch-{socket.gethostname()}-{proc.pid}-")
    # a live fetch of this machine, and one of another machine on a shared disk, are left alone
    live = out.parent / f".fetch-{socket.gethostname()}-{os.getpid()}-abc"
    other = out.parent / f".fetch-elsewhere-{proc.pid}-abc"
    live.mkdir()
    other.mkdir()
    fetch_results(out, url=(tmp_path / "repo").as_uri(), ref="main")
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([live.name, other.name,
                                                                   "results"])
    assert (out / "provenance.json").is_file()


WORKERS = """
import os, sys, time
from pathlib import Path
from colorlab._termination import terminated_as_exception
from colorlab.worker_pool import run_jobs

def nap(folder):
    (Path(folder) / str(os.getpid())).touch()
    time.sleep(300)

if __name__ == "__main__":
    with terminated_as_exception():
        try:
            list(run_jobs(nap, [sys.argv[1]] * 2, workers=2))
        except KeyboardInterrupt as err:
            print(type(err).__name__)
"""


def test_terminated_workers_stop_with_their_parent(tmp_path):
    """A parent stopped by SIGTERM interrupts its workers instead of waiting out their jobs."""
    script, pids = tmp_path / "workers.py", tmp_path / "pids"
    script.write_text(WORKERS)
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(pids)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(pids.iterdir())) == 2, seconds=120)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)  # not the jobs' 300 s
        assert stdout.strip() == "Terminated", stderr
        for worker in pids.iterdir():
            with pytest.raises(ProcessLookupError):
                os.kill(int(worker.name), 0)
    finally:  # on a failure, no worker is left behind either
        proc.kill()
        for worker in pids.iterdir():
            try:
                os.kill(int(worker.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
