"""The trainer's GPU-oriented paths, exercised on the CPU: no host reads in the step, the
branch-free nearest-bin search, torch.compile, and a clear error when training diverges."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import colorlab.bin_search as bin_search
import colorlab.gamut as gamut
from colorlab.data import SampleImages
from colorlab.train import TrainConfig, Trainer, load_model
from colorlab.training_step import TrainingStep

SIZE, WIDTH = 16, 0.0625
aten = torch.ops.aten


@pytest.fixture(scope="module")
def splits():
    return SampleImages(size=SIZE, n=22, seed=3).splits()


class HostReads(TorchDispatchMode):
    """Records the ops that read tensor values back to the host (a GPU sync) or that have a
    data-dependent output size (``nonzero``: also a sync on a GPU)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (aten._local_scalar_dense.default, aten.nonzero.default):
            self.reads.append((func.__name__.split(".")[0], tuple(args[0].shape)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("loss,k,reads", [("l2", 5, 0), ("ce", 5, 0), ("rebal", 5, 0),
                                          ("ce", 7, 0), ("ce", 10, 1)])
def test_the_step_reads_nothing_back(loss, k, reads, splits, tmp_path, monkeypatch):
    """On an accelerator every host read stalls the queue. The data and loss part of a step
    reads nothing back: the nearest-bin search keeps its exactness flag on the device, read once
    per epoch, up to k = SRGB_EXACT_K neighbours (beyond, one flag per step); ``nonzero`` runs
    only on the CPU generator's random draws of the augmentation (batch-sized)."""
    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    batch = 8
    config = TrainConfig(loss=loss, width=WIDTH, epochs=1, batch_size=batch, size=SIZE, k=k)
    w = torch.rand(313, dtype=torch.float64) + 0.5 if loss == "rebal" else None
    trainer = Trainer(config, splits["train"], None, tmp_path, weights=w, progress=False)
    state = trainer._fresh_state()
    model, gen = state.model, state.gen
    step = trainer._training_step(state)
    idx = torch.arange(batch)
    step.forward_loss(model, trainer.train_images[idx], gen)  # warm caches
    with HostReads() as mode:
        from colorlab._validation import trusted_values

        with trusted_values():
            step.forward_loss(model, trainer.train_images[idx], gen)
    scalar_reads = [r for r in mode.reads if r[0] == "_local_scalar_dense"]
    if reads == 0:
        assert scalar_reads == []
        assert all(shape == (batch,) for name, shape in mode.reads if name == "nonzero")
    else:  # the flag is read at once (and here some pixels then take the full search)
        assert scalar_reads[0] == ("_local_scalar_dense", ())
    assert len(step.flags) == (2 if loss != "l2" and k <= bin_search.SRGB_EXACT_K else 0)


def test_deferred_flags_change_nothing_and_are_checked_every_epoch(splits, tmp_path,
                                                                    monkeypatch):
    """The accelerator's path (flags kept on the device) trains bit for bit as the exact path
    does, validation included; a false flag (which sRGB targets cannot give) stops the run at the
    end of its epoch with a clear error, the last checkpoint kept."""
    config = TrainConfig(loss="ce", width=WIDTH, epochs=2, batch_size=8, size=SIZE,
                         checkpoint_every=1)
    plain = Trainer(config, splits["train"], splits["val"], tmp_path / "a", progress=False).fit()
    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    checks = []
    real_check = TrainingStep.check_exact
    monkeypatch.setattr(TrainingStep, "check_exact", lambda self, where: (
        checks.append((where, len(self.flags))), real_check(self, where))[1])
    deferred = Trainer(config, splits["train"], splits["val"], tmp_path / "b",
                       progress=False).fit()
    assert [(h["train_loss"], h["val_loss"]) for h in plain] == \
        [(h["train_loss"], h["val_loss"]) for h in deferred]
    steps = -(-len(splits["train"]) // 8)
    val_chunks = -(-len(splits["val"]) // 64)
    assert checks == [("epoch 1", steps), ("the validation images", val_chunks),
                      ("epoch 2", steps), ("the validation images", val_chunks)]

    real_search = bin_search._lattice_search
    calls = {"n": 0}

    def inexact_in_the_second_epoch(*args):
        idx, dist, exact = real_search(*args)
        calls["n"] += 1
        return idx, dist, exact & (calls["n"] <= steps)

    monkeypatch.setattr(bin_search, "_lattice_search", inexact_in_the_second_epoch)
    monkeypatch.setattr(Trainer, "_validate", lambda self, model: None)
    with pytest.raises(RuntimeError, match="targets of epoch 2 were not exact.*from before it"):
        Trainer(config, splits["train"], None, tmp_path / "c", progress=False).fit()
    ck = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1 and not (tmp_path / "c" / "done.json").exists()


def test_branch_free_search_gives_the_same_neighbours(monkeypatch):
    """The accelerator path (stable sort of all 16 candidates) equals the CPU path (topk, ties
    repaired), including ties: points halfway between bins and exactly on bins."""
    gen = torch.Generator().manual_seed(0)
    points = torch.cat([torch.rand(2, 4000, generator=gen) * 220 - 110,
                        torch.arange(-110.0, 110.0, 5.0).repeat(2, 1)], dim=1)
    ab = points.view(1, 2, 1, -1)
    for k in (1, 5, 10):
        expected = gamut.nearest_bins(ab, k)
        monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
        got = gamut.nearest_bins(ab, k)
        monkeypatch.undo()
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_compiled_training_drops_the_partial_batch_and_saves_plain_weights(splits, tmp_path):
    """``compile=True`` (what the full profile uses on a GPU) through inductor's CPU backend."""
    n = len(splits["train"])
    config = TrainConfig(loss="ce", width=WIDTH, epochs=2, batch_size=4, size=SIZE, compile=True)
    assert n % 4, "the test needs a partial last batch"
    events = []
    trainer = Trainer(config, splits["train"], splits["val"], tmp_path, progress=False,
                      callback=lambda event, epoch, step: events.append((event, epoch, step)))
    history = trainer.fit()
    seen = [round(h["images_per_s"] * h["seconds"]) for h in history]
    assert seen == [n - n % 4] * 2  # one compiled shape: the partial batch is dropped
    # the steps announced per epoch (progress bar, callback) are the steps taken
    assert [e for e in events if e[0] == "epoch"] == [("epoch", 0, n // 4), ("epoch", 1, n // 4)]
    assert sum(e[0] == "step" for e in events) == 2 * (n // 4)
    model, saved = load_model(tmp_path / "model.pt")  # keys without torch.compile's prefix
    assert saved.compile and not any(k.startswith("_orig_mod") for k in model.state_dict())
    L = torch.rand(2, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        assert torch.allclose(model(L), trainer.model(L), atol=1e-5)


def test_divergence_is_a_clear_error_and_keeps_the_last_checkpoint(splits, tmp_path, monkeypatch):
    config = TrainConfig(loss="ce", width=WIDTH, epochs=3, batch_size=8, size=SIZE)
    real = TrainingStep.loss
    calls = {"n": 0}
    steps_per_epoch = -(-len(splits["train"]) // 8)

    def nan_after_one_epoch(self, *args):
        loss = real(self, *args)
        if not self.model.training:  # validation
            return loss
        calls["n"] += 1
        return loss * float("nan") if calls["n"] > steps_per_epoch else loss

    monkeypatch.setattr(TrainingStep, "loss", nan_after_one_epoch)
    with pytest.raises(FloatingPointError, match="diverged.*epoch 2.*Lower the learning rate"):
        Trainer(config, splits["train"], None, tmp_path, progress=False).fit()
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "done.json").exists()


class InductorError(Exception):
    """Stands in for a compiler failure (its module is what the trainer recognises)."""


InductorError.__module__ = "torch._inductor.exc"


def test_a_failed_compilation_falls_back_to_eager_with_a_warning(splits, tmp_path, monkeypatch):
    """No C compiler or a Triton error on a lent GPU must not lose the run: the trainer warns,
    trains uncompiled from the same random state, and records that it did."""
    def broken_compile(model, **kwargs):
        def forward(*args):
            raise RuntimeError("backend failed") from InductorError("no working C compiler")
        return forward

    monkeypatch.setattr(torch, "compile", broken_compile)
    # one full batch per epoch: no partial batch that only the compile config would drop
    base = dict(loss="ce", width=WIDTH, epochs=2, batch_size=len(splits["train"]), size=SIZE)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*without compilation"):
        trainer = Trainer(TrainConfig(**base, compile=True), splits["train"], None,
                          tmp_path / "c", progress=False)
        history = trainer.fit()
    assert not trainer.compiled and [h["compiled"] for h in history] == [False, False]
    eager = Trainer(TrainConfig(**base), splits["train"], None, tmp_path / "e", progress=False)
    # the failed first attempt consumed no random draws: the result is the eager run's, exactly
    assert [h["train_loss"] for h in eager.fit()] == [h["train_loss"] for h in history]
    assert all(torch.equal(a, b) for a, b in zip(eager.model.state_dict().values(),
                                                 trainer.model.state_dict().values()))

    def other_error(model, **kwargs):
        def forward(*args):
            raise ValueError("a bug of ours, not the compiler's")
        return forward

    monkeypatch.setattr(torch, "compile", other_error)
    with pytest.raises(ValueError, match="a bug of ours"):
        Trainer(TrainConfig(**base, compile=True), splits["train"], None, tmp_path / "x",
                progress=False).fit()
