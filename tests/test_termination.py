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
    # machine "<this host>-<dead pid>", whose live process has this machine's PID
    similar = out.parent / f".fetch-{socket.gethostname()}-{proc.pid}-{os.getpid()}-abc"
    for folder in (live, other, similar):
        folder.mkdir()
    fetch_results(out, url=(tmp_path / "repo").as_uri(), ref="main")
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([live.name, other.name,
                                                                   similar.name, "results"])
    assert (out / "provenance.json").is_file()


WORKERS = """
import os, sys, time
from pathlib import Path
from colorlab._termination import terminated_as_exception
from colorlab.worker_pool import run_jobs

def nap(job):
    folder, index, seconds = job
    (Path(folder) / f"{os.getpid()}-{index}").touch()
    time.sleep(seconds)

if __name__ == "__main__":
    seconds = [float(s) for s in sys.argv[2:]]
    with terminated_as_exception():
        try:
            list(run_jobs(nap, [(sys.argv[1], i, s) for i, s in enumerate(seconds)], workers=2))
        except KeyboardInterrupt as err:
            print(type(err).__name__)
"""


@pytest.mark.parametrize("seconds", [(300, 300, 300, 300), (0, 300)],
                         ids=["jobs-queued", "a-worker-idle"])
def test_terminated_workers_stop_with_their_parent(tmp_path, seconds):
    """A parent stopped by SIGTERM interrupts its running workers instead of waiting out their
    jobs, starts none of the jobs still queued, and an idle worker stops quietly."""
    script, started = tmp_path / "workers.py", tmp_path / "started"
    script.write_text(WORKERS)
    started.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(started),
                             *map(str, seconds)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pids = lambda: {int(p.name.split("-")[0]) for p in started.iterdir()}  # noqa: E731
    try:
        _wait_for(lambda: len(list(started.iterdir())) == 2, seconds=120)
        time.sleep(1)  # the idle worker is back waiting for work
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)  # not the jobs' 300 s
        assert time.monotonic() - t0 < 90  # (a busy CI machine is slow to end processes)
        assert stdout.strip() == "Terminated" and "Traceback" not in stderr, stderr
        assert len(list(started.iterdir())) == 2  # no queued job started
        for pid in pids():
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:  # on a failure, no worker is left behind either
        proc.kill()
        for pid in pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_refresh_stopped_midway_leaves_a_whole_results_folder(tmp_path, monkeypatch):
    """``--refresh`` replaces the earlier fetch in one rename: stopped while a folder is being
    deleted, the results folder is the old fetch or the new one, never a part of either (it
    used to delete the old one file by file in place, keeping its ``.fetched.json``)."""
    import colorlab.results_fetch as rf
    from test_results_fetch import make_repo

    make_repo(tmp_path / "repo")
    out, url = tmp_path / "here" / "results", (tmp_path / "repo").as_uri()
    fetch_results(out, url=url, ref="main")
    whole = sorted(p.relative_to(out) for p in out.rglob("*"))
    real_rmtree = shutil.rmtree

    def stopped_midway(path, *args, **kwargs):  # deletes three files, then SIGTERM arrives
        for f in [p for p in Path(path).rglob("*") if p.is_file()][:3]:
            f.unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(rf.shutil, "rmtree", stopped_midway)
    with pytest.raises(KeyboardInterrupt):
        fetch_results(out, url=url, ref="main", refresh=True)
    monkeypatch.setattr(rf.shutil, "rmtree", real_rmtree)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == whole
