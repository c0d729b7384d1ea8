"""colorlab.runs, its worker processes: jobs in this process or in spawned workers (the runs
themselves are tested in test_reproduce.py and test_seeds.py)."""
import os
import subprocess
import sys
import time

import pytest
import torch

from colorlab.worker_pool import default_workers, run_jobs, wait_for_others


def _square_or_fail(x):
    if x < 0:
        raise ValueError(f"negative job {x}")
    return x * x


def _square_or_fail_once_the_other_started(job):
    """Job 2 marks that it started; job -1 waits for that, then fails: job 2 is running when
    the error arrives (a job still waiting for its turn is not started after an error)."""
    x, folder = job
    started = os.path.join(folder, "started")
    if x >= 0:
        open(started, "w").close()
        time.sleep(1)
    else:
        while not os.path.exists(started):
            time.sleep(0.05)
    return _square_or_fail(x)


def _pid_after_barrier(_):
    wait_for_others()  # every worker must arrive, or this hangs (the test's timeout catches it)
    return os.getpid()


def test_in_process_keeps_the_order():
    assert list(run_jobs(_square_or_fail, [3, 1, 2])) == [(3, 9), (1, 1), (2, 4)]


def test_workers_return_every_result_once():
    results = dict(run_jobs(_square_or_fail, range(5), workers=2))
    assert results == {x: x * x for x in range(5)}


def test_an_error_in_a_worker_is_raised_here_after_the_running_jobs(tmp_path):
    seen = []
    with pytest.raises(ValueError, match="negative job -1"):
        for job, result in run_jobs(_square_or_fail_once_the_other_started,
                                    [(2, str(tmp_path)), (-1, str(tmp_path))], workers=2):
            seen.append((job[0], result))
    assert seen == [(2, 4)]


def test_the_barrier_lets_every_worker_wait_for_the_others():
    pids = [pid for _, pid in run_jobs(_pid_after_barrier, [0, 1], workers=2, barrier=True)]
    assert len(set(pids)) == 2 and os.getpid() not in pids


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises((TypeError, ValueError), match="workers"):
        list(run_jobs(abs, [1], workers=workers))


def test_a_barrier_needs_one_worker_per_job():
    with pytest.raises(ValueError, match="one worker per job"):
        list(run_jobs(abs, [1, 2, 3], workers=2, barrier=True))


def test_default_workers_is_one_on_a_cpu():
    assert default_workers(torch.device("cpu"), 18) == 1


def test_this_process_keeps_to_the_cores_the_workers_leave_and_gets_its_threads_back():
    before, seen = torch.get_num_threads(), []
    for _ in run_jobs(_square_or_fail, [1, 2, 3], workers=2):
        seen.append(torch.get_num_threads())
    assert seen == [max(1, (os.cpu_count() or 1) - 2)] * 3
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="no SIGUSR1 here")
@pytest.mark.parametrize("enable", ["from colorlab._stacks import enable_stack_dumps as f; f()",
                                    "from colorlab.cli import main; main(['info'])"])
def test_sigusr1_prints_the_stacks_and_the_process_goes_on(enable):
    code = f"{enable}\nimport os, signal\nos.kill(os.getpid(), signal.SIGUSR1)\nprint('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("alive")
    assert "Current thread" in done.stderr and 'File "<string>"' in done.stderr


def test_stack_dumps_need_no_real_stderr(monkeypatch):
    import faulthandler
    import io
    import signal

    from colorlab._stacks import enable_stack_dumps

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # as in a notebook or a captured test
    try:
        assert enable_stack_dumps() == hasattr(signal, "SIGUSR1")
    finally:
        if hasattr(signal, "SIGUSR1"):
            faulthandler.unregister(signal.SIGUSR1)


def test_the_kept_examples_are_small_enough_to_come_back_from_a_device(tmp_path):
    """Four test images' float16 logits at the recorded size, 88x88: two such files per data set
    keep the recorded results/ under the 15 MiB of tests/recorded_checks.py."""
    from colorlab.config import TrainConfig, build_model
    from colorlab.data import SampleImages
    from colorlab.runs import save_examples

    test_set = SampleImages(size=88, n=6).splits()["train"]
    model = build_model(TrainConfig(loss="rebal", width=0.0625, size=88))
    save_examples(model, test_set, tmp_path / "examples.pt", "cpu")
    saved = torch.load(tmp_path / "examples.pt", weights_only=True)
    assert saved["logits"].shape == (4, 313, 22, 22) and saved["logits"].dtype == torch.float16
    assert (tmp_path / "examples.pt").stat().st_size < 1.45 * 2 ** 20
