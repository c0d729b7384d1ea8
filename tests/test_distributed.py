"""Training under torchrun with DistributedDataParallel: 2 CPU processes on the gloo backend.

One straight run through the CLI, one run stopped after its 2nd of 3 epochs and resumed: both
ranks end with identical weights, equal to the straight run's; the recorded validation loss and
the sharded predictions equal a single-process evaluation of the same weights.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from colorlab import distributed
from colorlab.transforms import downsample_ab, to_lab
from colorlab.checkpoint import CheckpointError, load_checkpoint
from colorlab.cli import _dataset_splits
from colorlab.evaluate import predict_ab
from colorlab.losses import RebalancedCrossEntropy
from colorlab.train import TrainConfig, Trainer, load_model

ARGS = dict(loss="ce", width=0.0625, epochs=3, batch_size=8, size=16, lr=1e-3)
CLI = ["--dataset", "sample", "--loss", "ce", "--width", "0.0625", "--epochs", "3",
       "--batch-size", "8", "--size", "16", "--lr", "1e-3", "--device", "cpu"]

# the same run as `colorlab train` with CLI, plus each rank's weights and a sharded prediction
WORKER = textwrap.dedent("""
    import json, sys, torch
    from colorlab import distributed
    from colorlab.cli import _dataset_splits
    from colorlab.train import TrainConfig, Trainer
    ctx = distributed.setup("cpu")
    run, out, stop = sys.argv[1], sys.argv[2], int(sys.argv[3])
    splits = _dataset_splits("sample", 16)
    cfg = TrainConfig(**json.loads(sys.argv[4]))

    def stop_after(event, epoch, step):  # a crash of every rank after the checkpoint of `stop`
        if event == "epoch" and epoch + 1 == stop:
            ctx.barrier()
            raise SystemExit(3)

    trainer = Trainer(cfg, splits["train"], splits["val"], run, progress=False,
                      callback=stop_after)
    trainer.fit()
    torch.save(trainer.model.state_dict(), f"{out}/rank{ctx.rank}.pt")
    ab = distributed.sharded_predict_ab(trainer.model, splits["test"].images, batch_size=16)
    torch.save(ab, f"{out}/predicted{ctx.rank}.pt")
    distributed.shutdown()
""")


def torchrun(nproc, *args, tmp_path, check=True, env=None):
    """``python -m torch.distributed.run --standalone`` (a free port) with a time limit: a hung
    rank fails the test instead of CI (collectives also time out after 2 minutes)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1",
               COLORLAB_DIST_TIMEOUT_MIN="2", COLORLAB_CACHE="off", **(env or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", str(nproc), *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def weights_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The straight CLI run, and the stopped-then-resumed run (with a copy of its checkpoint
    from the stop)."""
    tmp = tmp_path_factory.mktemp("ddp")
    torchrun(2, "-m", "colorlab", "train", *CLI, "--run-dir", str(tmp / "straight"),
             tmp_path=tmp)
    (tmp / "worker.py").write_text(WORKER)
    stopped = torchrun(2, "worker.py", str(tmp / "resumed"), str(tmp), "2", json.dumps(ARGS),
                       tmp_path=tmp, check=False)
    assert stopped.returncode != 0 and not (tmp / "rank0.pt").exists()
    shutil.copytree(tmp / "resumed", tmp / "stopped")
    torchrun(2, "worker.py", str(tmp / "resumed"), str(tmp), "0", json.dumps(ARGS), tmp_path=tmp)
    return tmp


def test_both_ranks_end_with_the_same_weights_as_the_straight_run(runs):
    rank0, rank1 = (torch.load(runs / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert weights_equal(rank0, rank1)  # BatchNorm running statistics included
    straight = load_checkpoint(runs / "straight" / "model.pt")
    assert weights_equal(rank0, straight["model"])  # resumed after epoch 2 == uninterrupted
    resumed = json.loads((runs / "resumed" / "history.json").read_text())
    history = json.loads((runs / "straight" / "history.json").read_text())
    assert [h["train_loss"] for h in resumed] == [h["train_loss"] for h in history]
    assert [h["val_loss"] for h in resumed] == [h["val_loss"] for h in history]


def test_world_size_effective_batch_and_lr_are_recorded(runs):
    model = load_checkpoint(runs / "straight" / "model.pt")
    assert (model["world_size"], model["effective_batch_size"], model["lr"]) == (2, 16, 1e-3)
    history = json.loads((runs / "straight" / "history.json").read_text())
    assert len(history) == 3
    assert all((h["world_size"], h["effective_batch_size"]) == (2, 16) for h in history)
    stopped = load_checkpoint(runs / "stopped" / "checkpoint.pt")
    assert stopped["epoch"] == 2 and len(stopped["rank_states"]) == 2


def test_resuming_with_another_world_size_is_an_error(runs):
    splits = _dataset_splits("sample", 16)
    trainer = Trainer(TrainConfig(**ARGS), splits["train"], splits["val"], runs / "stopped",
                      progress=False)
    with pytest.raises(CheckpointError, match="trained by 2 process.*nproc_per_node 2"):
        trainer.fit()


def test_validation_and_predictions_equal_one_process(runs):
    model, _ = load_model(runs / "straight" / "model.pt")
    splits = _dataset_splits("sample", 16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the ranks
    try:
        with torch.no_grad():
            L, ab = to_lab(splits["val"].images)
            loss = RebalancedCrossEntropy(None, k=5, sigma=5.0)(model(L), downsample_ab(ab))
        predicted = predict_ab(model, splits["test"].images, batch_size=16)
    finally:
        torch.set_num_threads(threads)
    assert len(splits["val"]) <= 64  # one validation chunk: the mean of one batch
    history = json.loads((runs / "straight" / "history.json").read_text())
    assert history[-1]["val_loss"] == float(loss.double())
    assert len(splits["test"]) > 2 * 16  # three chunks, shared out over the two ranks
    for r in (0, 1):
        assert torch.equal(torch.load(runs / f"predicted{r}.pt", weights_only=True), predicted)


def test_world_size_one_under_torchrun(tmp_path):
    run = tmp_path / "one"
    torchrun(1, "-m", "colorlab", "train", *CLI[:5], "1", *CLI[6:], "--run-dir", str(run),
             tmp_path=tmp_path)
    model = load_checkpoint(run / "model.pt")
    assert (model["world_size"], model["effective_batch_size"]) == (1, 8)
    assert "rank_states" not in load_checkpoint(run / "checkpoint.pt")


def test_single_process_context():
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.main, ctx.active) == (0, 1, True, False)
    images = torch.arange(10)
    shards = [distributed.shard(images, distributed.DistContext(r, 3)) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(9))  # disjoint, 10 // 3 each
    with pytest.raises(ValueError, match="cannot be shared by 3"):
        distributed.shard(torch.arange(2), distributed.DistContext(0, 3))


def test_reproduce_under_torchrun(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    torchrun(2, "-m", "colorlab", "reproduce", "--profile", "ci", "--classifier", "none",
             "--datasets", "celeba", "--epochs", "1", "--seeds", "1", "--device", "cpu", "--quiet",
             "--out", str(tmp_path / "results"), "--work-dir", str(tmp_path / "runs"),
             tmp_path=tmp_path, env={"TMPDIR": str(scratch)})
    provenance = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert set(provenance["runs"]) == {"celeba/l2", "celeba/ce", "celeba/rebal"}
    for name, run in provenance["runs"].items():
        assert run["config"]["batch_size"] == 8  # the profile's 16, shared by two ranks
        history = json.loads((tmp_path / "results" / name / "history.json").read_text())
        assert (history[0]["world_size"], history[0]["effective_batch_size"]) == (2, 16)
    assert (tmp_path / "results" / "celeba" / "metrics.json").is_file()
    assert not list(scratch.glob("colorlab-rank-*"))  # rank 1's scratch copy is gone


def test_train_on_an_image_folder(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from colorlab.cli import main

    monkeypatch.setenv("COLORLAB_CACHE", "off")
    for c, cls in enumerate(("n01", "n02")):  # ImageNet-style: one subfolder per class
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (20, 24), (50 * i, 90 * c, 200)).save(tmp_path / "train" / cls /
                                                                   f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--images", str(tmp_path / "train"), "--size", "16", "--width",
                 "0.0625", "--epochs", "1", "--batch-size", "4", "--loss", "ce", "--run-dir",
                 str(run), "--device", "cpu"]) == 0
    assert "train: read 10 images at 16x16, 2 classes" in capsys.readouterr().out
    model = load_checkpoint(run / "model.pt")
    assert (model["world_size"], model["effective_batch_size"]) == (1, 4)
