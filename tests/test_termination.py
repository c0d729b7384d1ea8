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
    # names no fetch writes (a process number too large, a digit that is not ASCII): left alone
    odd = [out.parent / f".fetch-{socket.gethostname()}-{n}-abc" for n in ("9" * 20, "\u00b2")]
    for folder in (live, other, similar, *odd):
        folder.mkdir()
    fetch_results(out, url=(tmp_path / "repo").as_uri(), ref="main")
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [live.name, other.name, similar.name, *(p.name for p in odd), "results"])
    assert (out / "provenance.json").is_file()


def _assert_ended(pids) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _kill(proc: subprocess.Popen, pids) -> None:
    """The test's script and the workers it started, whatever happened."""
    proc.kill()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


WORKERS = """
import os, sys, time
from pathlib import Path
from colorlab._termination import terminated_as_exception
from colorlab.worker_pool import run_jobs

if os.environ.get("STOP_AT_SUBMIT"):  # the parent is stopped while it submits that job
    import concurrent.futures

    submit, submitted = concurrent.futures.ProcessPoolExecutor.submit, []

    def stopped_submit(pool, *args):
        submitted.append(args)
        if len(submitted) == int(os.environ["STOP_AT_SUBMIT"]):
            raise KeyboardInterrupt
        return submit(pool, *args)

    concurrent.futures.ProcessPoolExecutor.submit = stopped_submit


if os.environ.get("STOP_AT_LAUNCH"):  # Ctrl-C just after the first worker's process started
    import multiprocessing.util
    import signal
    import threading

    spawn = multiprocessing.util.spawnv_passfds

    def interrupted_spawn(path, args, passfds):
        pid = spawn(path, args, passfds)
        if "spawn_main" in repr(args) and not os.environ.get("STOPPED"):
            os.environ["STOPPED"] = "1"
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # (where it would raise, before the worker has its instructions)
        return pid

    multiprocessing.util.spawnv_passfds = interrupted_spawn
    # a thread that does not block signals (torch's, in colorlab): the signal may reach it
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()


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
        _assert_ended(pids())
    finally:  # on a failure, no worker is left behind either
        _kill(proc, pids())


SLOW_START = """
import os, sys, time
if "--multiprocessing-fork" in sys.argv:  # a pool's worker: its start-up takes seconds
    open(os.path.join(os.environ["STARTING"], str(os.getpid())), "w").close()
    time.sleep(4)
"""


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_workers_stopped_while_they_start_print_nothing(tmp_path, stop):
    """Ctrl-C (to the whole process group) or ``SIGTERM`` (to the parent, which interrupts its
    workers) while the workers are still starting: they print no traceback from the middle of
    their start-up, start no job, and end with the parent (the signals are held until a worker
    ignores them)."""
    script, started, starting = tmp_path / "workers.py", tmp_path / "started", tmp_path / "starting"
    script.write_text(WORKERS)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_START)
    started.mkdir()
    starting.mkdir()
    env = {**os.environ, "STARTING": str(starting),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    proc = subprocess.Popen([sys.executable, str(script), str(started), "300", "300", "300"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    workers = lambda: [int(p.name) for p in starting.iterdir()]  # noqa: E731
    try:
        _wait_for(lambda: len(workers()) == 2, seconds=120)
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
        assert "Traceback" not in stderr and "Fatal" not in stderr, stderr
        assert stdout.strip() == ("KeyboardInterrupt" if stop == "ctrl-c" else "Terminated")
        assert list(started.iterdir()) == []  # no job started
        _assert_ended(workers())
    finally:
        _kill(proc, workers())


@pytest.mark.parametrize("stop", ["STOP_AT_SUBMIT", "STOP_AT_LAUNCH"])
def test_a_pool_stopped_while_it_starts_waits_for_no_job(tmp_path, stop):
    """Ctrl-C between two submissions (``STOP_AT_SUBMIT``: it used to leave through the
    executor's ``shutdown(wait=True)`` and run every submitted job), or just after a worker's
    process started (``STOP_AT_LAUNCH``: raised there, it left the worker without its
    instructions, an ``EOFError`` traceback): the pool interrupts its workers as it does later,
    and no job starts."""
    script, started = tmp_path / "workers.py", tmp_path / "started"
    script.write_text(WORKERS)
    started.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(started), "300", "300", "300",
                             "300"], env={**os.environ, stop: "3"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)  # not the jobs' 300 s
    finally:
        proc.kill()
    assert stdout.strip() == "KeyboardInterrupt" and "Traceback" not in stderr, stderr
    assert list(started.iterdir()) == []


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


def test_a_refresh_stopped_between_its_two_renames_keeps_the_old_fetch(tmp_path, monkeypatch):
    """The old fetch is moved aside, then the new one into place: stopped between the two, the
    old one is moved back (the temporary folder that held it used to be deleted with it)."""
    import colorlab.results_fetch as rf
    from test_results_fetch import make_repo

    make_repo(tmp_path / "repo")
    out, url = tmp_path / "here" / "results", (tmp_path / "repo").as_uri()
    fetch_results(out, url=url, ref="main")
    whole = sorted(p.relative_to(out) for p in out.rglob("*"))
    real_replace, calls = os.replace, []

    def stopped_before_the_second(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(rf.os, "replace", stopped_before_the_second)
    with pytest.raises(KeyboardInterrupt):
        fetch_results(out, url=url, ref="main", refresh=True)
    monkeypatch.undo()
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == whole
    assert [p.name for p in out.parent.iterdir()] == ["results"]
