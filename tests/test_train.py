"""The trainer: CPU determinism, exact resume after kill -9, atomic and validated checkpoints."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from colorlab.checkpoint import CheckpointError, atomic_save, load_checkpoint
from colorlab.data import SampleImages
from colorlab.train import TrainConfig, Trainer, load_model
from conftest import StopTraining, stop_after

SIZE, WIDTH = 16, 0.0625


@pytest.fixture(scope="module")
def splits():
    return SampleImages(size=SIZE, n=40, seed=5).splits()


def config(**kw):
    base = dict(loss="ce", width=WIDTH, epochs=3, batch_size=8, size=SIZE, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def weights_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("loss", ["l2", "ce", "rebal"])
def test_same_seed_same_result(loss, splits, tmp_path):
    w = torch.rand(313, dtype=torch.float64) + 0.5 if loss == "rebal" else None
    runs = []
    for name in ("a", "b"):
        t = Trainer(config(loss=loss), splits["train"], splits["val"], tmp_path / name, weights=w,
                    progress=False)
        history = t.fit()
        runs.append((history, t.model.state_dict()))
    (h1, w1), (h2, w2) = runs
    assert [h["train_loss"] for h in h1] == [h["train_loss"] for h in h2]
    assert [h["val_loss"] for h in h1] == [h["val_loss"] for h in h2]
    assert weights_equal(w1, w2)
    assert len(h1) == 3 and all(h["images_per_s"] > 0 for h in h1)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["best.pt", "checkpoint.pt", "config.json", "done.json", "history.json",
                     "model.pt"]
    assert json.loads((tmp_path / "a" / "history.json").read_text())[-1]["epoch"] == 3


def test_checkpoints_load_with_weights_only_and_as_models(splits, tmp_path):
    Trainer(config(epochs=1), splits["train"], None, tmp_path, progress=False).fit()
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "generator", "torch_rng", "config", "epoch"} <= set(ck)
    model, cfg = load_model(tmp_path / "model.pt")
    assert cfg.loss == "ce" and not model.training
    with pytest.raises(CheckpointError, match="not a regression"):
        load_model(tmp_path / "model.pt", expect_head="regression")


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(int(sys.argv[2]))
    from colorlab.data import SampleImages
    from colorlab.train import TrainConfig, Trainer
    s = SampleImages(size=16, n=40, seed=5).splits()
    cfg = TrainConfig(loss="ce", width=0.0625, epochs=8, batch_size=8, size=16, lr=1e-3)
    slow = lambda event, epoch, step: time.sleep(0.04)
    Trainer(cfg, s["train"], s["val"], sys.argv[1], progress=False, callback=slow).fit()
""")


def test_kill_9_then_resume_gives_the_uninterrupted_result(splits, tmp_path):
    threads = torch.get_num_threads()
    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(run), str(threads)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        history = run / "history.json"
        if history.exists() and len(json.loads(history.read_text())) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.13)  # somewhere inside a later epoch, maybe inside a checkpoint write
    assert proc.poll() is None, "the training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(run / "checkpoint.pt")
    assert 2 <= saved["epoch"] < 8
    cfg = TrainConfig(loss="ce", width=0.0625, epochs=8, batch_size=8, size=16, lr=1e-3)
    resumed = Trainer(cfg, splits["train"], splits["val"], run, progress=False)
    resumed_history = resumed.fit(resume=True)
    straight = Trainer(cfg, splits["train"], splits["val"], tmp_path / "straight", progress=False)
    straight_history = straight.fit()
    assert weights_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # a killed write is cleaned
    assert [h["train_loss"] for h in resumed_history] == [h["train_loss"] for h in straight_history]


def test_corrupt_checkpoint_is_an_error_not_a_restart(splits, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    t = Trainer(config(), splits["train"], None, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="corrupt"):
        t.fit()
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"garbage"


def test_incompatible_checkpoint_is_an_error(splits, tmp_path):
    Trainer(config(epochs=1), splits["train"], None, tmp_path, progress=False).fit()
    other = Trainer(config(epochs=1, lr=5e-4), splits["train"], None, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="differs in lr"):
        other.fit()
    atomic_save({"format": 99}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="exists"):
        Trainer(config(epochs=1), splits["train"], None, tmp_path, progress=False).fit(resume=False)


def test_bad_configs():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="mse")
    with pytest.raises(ValueError, match="multiple of 8"):
        TrainConfig(size=90)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)


def test_rebal_needs_weights_and_sizes_must_match(splits, tmp_path):
    with pytest.raises(ValueError, match="rebalancing weights"):
        Trainer(config(loss="rebal"), splits["train"], None, tmp_path)
    with pytest.raises(ValueError, match="size"):
        Trainer(config(size=32), splits["train"], None, tmp_path)


def test_benchmark_reports_positive_throughput(splits, tmp_path):
    t = Trainer(config(), splits["train"], None, tmp_path, progress=False)
    rates = t.benchmark(steps=2, warmup=1, repeats=3)
    assert len(rates) == 3 and all(r > 0 for r in rates)
    assert not any(tmp_path.iterdir())
    assert "data" not in vars(t)  # the training set's fingerprint is hashed only for a fit
    for bad in (dict(steps=0), dict(repeats=0), dict(warmup=-1)):
        with pytest.raises(ValueError, match="steps and repeats"):
            t.benchmark(**bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_step(splits, tmp_path):
    t = Trainer(config(epochs=1), splits["train"], splits["val"], tmp_path, device="cuda",
                progress=False)
    assert t.fit()[0]["train_loss"] > 0


def test_best_pt_holds_the_lowest_validation_loss_also_after_a_resume(splits, tmp_path):
    c = config(epochs=5, lr=3e-3)
    straight = Trainer(c, splits["train"], splits["val"], tmp_path / "a", progress=False)
    history = straight.fit()
    best = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    losses = [h["val_loss"] for h in history]
    assert best["epoch"] == losses.index(min(losses)) + 1 and best["val_loss"] == min(losses)
    model, saved = load_model(tmp_path / "a" / "best.pt")
    assert saved == c

    with pytest.raises(StopTraining):
        Trainer(c, splits["train"], splits["val"], tmp_path / "b", progress=False,
                callback=stop_after(2)).fit()
    Trainer(c, splits["train"], splits["val"], tmp_path / "b", progress=False).fit()
    resumed = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
    assert resumed["epoch"] == best["epoch"] and weights_equal(resumed["model"], best["model"])


def test_a_run_says_where_its_time_went_besides_its_steps(splits, tmp_path, monkeypatch):
    """Each epoch records its validation seconds, the trainer the seconds it spent writing
    checkpoints in this call and the epoch it resumed from: what the device log prints per run
    (colorlab.runs), so that a call that runs out of time shows where it went."""
    config = TrainConfig(loss="ce", width=WIDTH, epochs=3, batch_size=8, size=SIZE,
                         checkpoint_every=1)
    first = Trainer(config, splits["train"], splits["val"], tmp_path, progress=False,
                    callback=stop_after(2))
    with pytest.raises(StopTraining):
        first.fit()
    assert first.start_epoch == 0 and first.checkpoint_seconds > 0
    again = Trainer(config, splits["train"], splits["val"], tmp_path, progress=False)
    real_validate, real_clock, extra = Trainer._validate, time.perf_counter, {"s": 0.0}
    # the trainer's clock runs 100 s ahead during validation: a slow validation that no load on
    # the test machine can confuse with slow steps
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + extra["s"])

    def slow_validation(self, model):
        extra["s"] += 100.0
        return real_validate(self, model)

    again._validate = slow_validation.__get__(again)
    history = again.fit()
    assert again.start_epoch == 2 and 0 < again.checkpoint_seconds
    assert all(h["val_seconds"] > 0 for h in history)
    # the resumed epoch's validation took the 100 s more, and its steps' seconds left them out
    assert history[-1]["val_seconds"] >= 100 > history[-1]["seconds"]


def test_a_finished_fit_lets_go_of_its_optimizer(splits, tmp_path):
    """After fit (and after a benchmark) the optimizer's state lives on only in the checkpoint:
    its memory is free for the evaluation that follows in the same process (colorlab.runs), and
    the released step refuses to train again rather than fail on a missing optimizer."""
    import gc
    import weakref

    seen = {}

    def keep_a_weak_reference(event, epoch, step):
        seen.setdefault("opt", weakref.ref(trainer.training_step.opt))

    trainer = Trainer(config(epochs=1), splits["train"], splits["val"], tmp_path,
                      progress=False, callback=keep_a_weak_reference)
    trainer.fit()
    gc.collect()
    assert trainer.training_step.opt is None and seen["opt"]() is None
    assert load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["state"]  # kept there
    with pytest.raises(RuntimeError, match="released when its training ended"):
        trainer.training_step(torch.arange(4), torch.Generator())
    trainer.benchmark(steps=1, warmup=0)
    assert trainer.training_step.opt is None and trainer.training_step.sched is None
