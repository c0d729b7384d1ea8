"""The training step recorded as a CUDA graph (colorlab.step_graph): on the CPU the static path
(inputs copied into fixed tensors, gradients zeroed in place, one flag per step) must train bit
for bit as the eager step does; on a GPU the recorded graph must train as the eager step does."""
import warnings

import pytest
import torch

import colorlab.bin_search as bin_search
from conftest import StopTraining, stop_after
from colorlab.data import SampleImages
from colorlab.step_graph import WARMUP_STEPS, StepGraph
from colorlab.train import TrainConfig, Trainer
from colorlab.training_step import TrainingStep

SIZE, WIDTH = 16, 0.0625


@pytest.fixture(scope="module")
def splits():
    return SampleImages(size=SIZE, n=22, seed=3).splits()  # 22 - val: a smaller last batch


def _fit(splits, run, graphs, device="cpu", **kw):
    config = TrainConfig(**{"loss": "rebal", "width": WIDTH, "epochs": 4, "batch_size": 8,
                            "size": SIZE, "checkpoint_every": 1, **kw})
    weights = torch.rand(313, generator=torch.Generator().manual_seed(0)).double() + 0.5
    trainer = Trainer(config, splits["train"], splits["val"], run,
                      weights=weights if config.loss == "rebal" else None, device=device,
                      progress=False)
    trainer.cuda_graphs = graphs
    return trainer, trainer.fit()


def _losses(history):
    return [(h["train_loss"], h["val_loss"]) for h in history]


def test_the_static_path_trains_bit_for_bit_as_the_eager_step(splits, tmp_path, monkeypatch):
    """Warm-up steps, then every full batch through the static inputs, the smaller last batch
    eagerly; the same losses, weights and optimizer state as the eager trainer, and a run resumed
    from a checkpoint (a new StepGraph, warmed up again) ends where the uninterrupted one does."""
    # flags kept, as on a GPU
    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    eager, h_eager = _fit(splits, tmp_path / "eager", graphs=False)
    graphed, h_graphed = _fit(splits, tmp_path / "graphed", graphs=True)
    assert _losses(h_eager) == _losses(h_graphed)
    for a, b in zip(eager.model.state_dict().values(), graphed.model.state_dict().values()):
        assert torch.equal(a, b)
    full = len(splits["train"]) // 8
    graph = graphed.training_step.graph
    assert len(splits["train"]) % 8 and graph.calls == 4 * full  # last batches: eager
    assert graph._static is not None and not graphed.graphed  # no graph on a CPU
    assert [h["cuda_graph"] for h in h_graphed] == [False] * 4

    config = TrainConfig(loss="rebal", width=WIDTH, epochs=4, batch_size=8, size=SIZE,
                         checkpoint_every=1)
    weights = torch.rand(313, generator=torch.Generator().manual_seed(0)).double() + 0.5
    first = Trainer(config, splits["train"], splits["val"], tmp_path / "resumed", weights=weights,
                    progress=False, callback=stop_after(2))
    first.cuda_graphs = True
    with pytest.raises(StopTraining):
        first.fit()
    again = Trainer(config, splits["train"], splits["val"], tmp_path / "resumed", weights=weights,
                    progress=False)
    again.cuda_graphs = True
    assert _losses(again.fit()) == _losses(h_graphed)
    for a, b in zip(again.model.state_dict().values(), graphed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_one_flag_per_step_and_a_false_one_stops_the_epoch(splits, tmp_path, monkeypatch):
    """The static path ANDs a step's exactness flags into one (what the graph hands back after a
    replay); the epoch's check still sees a false one from a static step and stops with the
    clear error."""
    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    seen = []
    real_check = TrainingStep.check_exact
    monkeypatch.setattr(TrainingStep, "check_exact", lambda self, where: (
        seen.append((where, len(self.flags))), real_check(self, where))[1])
    trainer, _ = _fit(splits, tmp_path / "a", graphs=True, epochs=5)
    steps = -(-len(splits["train"]) // 8)
    assert [n for where, n in seen if where.startswith("epoch")] == [steps] * 5
    assert trainer.training_step.graph._static is not None  # epochs 4 and 5: the static path

    real_search = bin_search._lattice_search
    calls = {"n": 0}

    def inexact_late(*args):  # false from epoch 4's first step on, a static one
        idx, dist, exact = real_search(*args)
        calls["n"] += 1
        return idx, dist, exact & (calls["n"] <= 3 * steps)

    monkeypatch.setattr(bin_search, "_lattice_search", inexact_late)
    monkeypatch.setattr(Trainer, "_validate", lambda self, model: None)
    with pytest.raises(RuntimeError, match="targets of epoch 4 were not exact"):
        _fit(splits, tmp_path / "b", graphs=True, epochs=5)


@pytest.mark.parametrize("change,why", [
    ({"precision": "fp16", "amp": True}, "gradient scaler"),
    ({"loss": "ce", "k": 10}, "reads its flag every step"),
])
def test_steps_that_cannot_be_recorded_say_why_and_train_eagerly(splits, tmp_path, change, why):
    with pytest.warns(RuntimeWarning, match=f"not recorded as a CUDA graph: .*{why}"):
        trainer, history = _fit(splits, tmp_path, graphs=True, epochs=1, **change)
    assert trainer.training_step.graph is None and len(history) == 1


def test_l2_has_no_search_and_can_be_recorded_at_any_k(splits, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer, _ = _fit(splits, tmp_path, graphs=True, epochs=1, loss="l2", k=10)
    assert trainer.training_step.graph is not None


def _linear_step():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)

    def step(x, y, flags):
        opt.zero_grad(set_to_none=False)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        flags.append(torch.tensor(True))
        flags.append(torch.tensor(bool(loss < 1e9)))
        return loss
    return model, opt, step


def test_step_graph_copies_inputs_hands_back_its_own_loss_and_runs_other_shapes_eagerly():
    model, opt, step = _linear_step()
    graph = StepGraph(step, opt, warmup=2)
    x, y, flags = torch.ones(4, 3), torch.zeros(4, 1), []
    losses = [graph(x * i, y, flags) for i in range(1, 5)]
    assert graph.calls == 4 and graph._static is not None
    assert len(flags) == 4  # one per step, warm-up or static: all of the step's own
    assert all(f.shape == () and f.item() for f in flags)
    before = losses[-1].clone()
    graph(x * 5, y, flags)  # a later step does not change what an earlier one handed back
    assert torch.equal(losses[-1], before)
    graph(torch.ones(2, 3), torch.zeros(2, 1), flags)  # another shape: eagerly, flags as they come
    assert graph.calls == 5 and len(flags) == 5 + 2


def test_step_graph_refuses_a_changed_learning_rate_and_bad_warmups():
    model, opt, step = _linear_step()
    graph = StepGraph(step, opt, warmup=1)
    for _ in range(2):
        graph(torch.ones(4, 3), torch.zeros(4, 1), [])
    opt.param_groups[0]["lr"] = 0.01
    with pytest.raises(RuntimeError, match=r"learning rate changed from \[0.1\] to \[0.01\]"):
        graph(torch.ones(4, 3), torch.zeros(4, 1), [])
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="warmup must be an int >= 1"):
            StepGraph(step, opt, warmup=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine can record a graph")
def test_a_recording_that_fails_is_a_warning_and_training_goes_on():
    model, opt, step = _linear_step()
    graph = StepGraph(step, opt, warmup=1, record=True)  # no CUDA device here: it must fail
    graph(torch.ones(4, 3), torch.zeros(4, 1), [])
    with pytest.warns(RuntimeWarning, match="recording the training step as a CUDA graph failed"):
        loss = graph(torch.ones(4, 3), torch.zeros(4, 1), [])
    assert graph.failed and not graph.recorded and torch.isfinite(loss)
    assert torch.isfinite(graph(torch.ones(4, 3), torch.zeros(4, 1), []))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_recorded_step_trains_as_the_eager_one_on_a_gpu(splits, tmp_path):
    """The device's check: the graph is recorded and replayed, and training follows the eager
    run within the GPU's nondeterminism (bf16 autocast, atomics in the backward pass)."""
    eager, h_eager = _fit(splits, tmp_path / "eager", graphs=False, device="cuda", epochs=6)
    graphed, h_graphed = _fit(splits, tmp_path / "graphed", graphs=True, device="cuda", epochs=6)
    assert graphed.graphed and graphed.training_step.graph.calls > WARMUP_STEPS
    assert [h["cuda_graph"] for h in h_graphed][-1] is True
    for a, b in zip(h_eager, h_graphed):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=0.05)
    assert h_graphed[-1]["train_loss"] < h_graphed[0]["train_loss"]


@pytest.mark.parametrize("loss", ["l2", "ce", "rebal"])
def test_the_recorded_part_reads_nothing_back_backward_included(loss, splits, tmp_path,
                                                                 monkeypatch):
    """What a graph records must never wait for the host: the static step's zero_grad, forward,
    loss and backward make no host read (the optimizer is CUDA's fused, capturable Adam there; the
    CPU's Adam reads its step counter, so its step is left out here)."""
    from test_train_fast_path import HostReads

    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    config = TrainConfig(loss=loss, width=WIDTH, epochs=1, batch_size=8, size=SIZE)
    weights = torch.rand(313, dtype=torch.float64) + 0.5 if loss == "rebal" else None
    trainer = Trainer(config, splits["train"], None, tmp_path, weights=weights, progress=False)
    trainer.cuda_graphs = True
    state = trainer._fresh_state()
    step = trainer._training_step(state)
    L, ab = step.inputs(trainer.train_images[torch.arange(8)], state.gen)
    step.core(step.forward, L, ab, [])  # warm caches, Adam's state
    state.opt.step = lambda *args, **kwargs: None
    flags = []
    with HostReads() as mode:
        step.core(step.forward, L, ab, flags)
    assert mode.reads == []
    assert len(flags) == (0 if loss == "l2" else 1)


def test_the_loss_keeps_the_search_tables_a_recorded_graph_reads():
    """A replay reads the nearest-bin search's device tables; they must outlive the search's
    cache (8 tables), so the loss holds them."""
    import gc
    import weakref

    from colorlab.losses import RebalancedCrossEntropy

    loss = RebalancedCrossEntropy()
    loss(torch.zeros(1, 313, 2, 2), torch.zeros(1, 2, 2, 2))
    cpu = torch.device("cpu")
    tables = weakref.ref(bin_search._lattice_for(loss.bins).on(cpu, torch.float32)[1])
    bin_search._lattice.cache_clear()
    gc.collect()
    assert tables() is not None and loss._lattice.on(torch.device("cpu"), torch.float32)[1] \
        is tables()



def _check_graphs_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "device" / "check_graphs.py"
    spec = importlib.util.spec_from_file_location("check_graphs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fault", [None, "frozen", "stale inputs"])
def test_the_device_check_tells_a_faulty_replay_from_a_sound_one(fault, monkeypatch, capsys):
    """scripts/device/check_graphs.py decides whether the device's reproduction uses graphs: a
    replay that does nothing (a frozen optimizer) or that keeps training on the recorded batch
    must make it say no; the static path standing in for a recorded graph must make it say yes."""
    real_replay, real_prepare = StepGraph._replay, StepGraph._prepare

    def prepare(self, inputs):
        real_prepare(self, inputs)
        self.recorded = True  # as if a graph had been recorded

    def replay(self):
        if fault == "frozen" and self._loss is not None:
            return  # nothing runs: the weights stay, the loss is the last one
        if fault == "stale inputs":  # every replay sees the batch it was recorded with
            self.__dict__.setdefault("_first", tuple(x.clone() for x in self._static))
            for static, first in zip(self._static, self._first):
                static.copy_(first)
        real_replay(self)

    monkeypatch.setattr(StepGraph, "_prepare", prepare)
    monkeypatch.setattr(StepGraph, "_replay", replay)
    assert _check_graphs_script().main(["--device", "cpu"]) == (0 if fault is None else 1)
    assert ("-> use CUDA graphs" in capsys.readouterr().out) == (fault is None)
