"""Precision per device (colorlab.config): the resolver, fp16 training with a gradient scaler on
the CPU, skipped steps on inf gradients, and resume with the scaler's state."""
import pytest
import torch

from conftest import StopTraining, stop_after
from test_train import config, splits  # noqa: F401 - the same data, a pytest fixture

from colorlab.checkpoint import load_checkpoint
from colorlab.config import resolve_precision
from colorlab.train import Trainer


@pytest.mark.parametrize("capability, expected", [
    ((6, 0), "fp16"),  # P100
    ((7, 0), "fp16"),  # V100
    ((7, 5), "fp16"),  # T4 (Colab's free GPU)
    ((8, 0), "bf16"),  # A100
    ((8, 6), "bf16"),  # RTX 30xx
    ((9, 0), "bf16"),  # H100
])
def test_auto_follows_the_compute_capability_not_is_bf16_supported(monkeypatch, capability,
                                                                    expected):
    # a T4 answers True here because bf16 is emulated; the resolver must not ask it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert resolve_precision("auto", "cuda") == expected
    assert resolve_precision("auto", "cuda", capability=capability) == expected


def test_auto_is_fp32_on_cpu_and_explicit_choices_are_kept():
    assert resolve_precision("auto", "cpu") == "fp32"
    for p in ("bf16", "fp16", "fp32"):
        assert resolve_precision(p, "cpu") == p
        assert resolve_precision(p, "cuda", capability=(7, 5)) == p
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        config(precision="half")


def test_amp_off_means_fp32(splits, tmp_path):
    t = Trainer(config(precision="fp16", amp=False), splits["train"], None, tmp_path,
                progress=False)
    assert t.precision == "fp32"


def test_fp16_with_grad_scaler_trains_on_cpu(splits, tmp_path):
    """The fp16 run's losses follow the float32 run's (same seed, same batches) and fall."""
    h16 = Trainer(config(precision="fp16"), splits["train"], splits["val"], tmp_path / "16",
                  progress=False).fit()
    h32 = Trainer(config(precision="fp32"), splits["train"], splits["val"], tmp_path / "32",
                  progress=False).fit()
    assert [h["precision"] for h in h16] == ["fp16"] * 3
    assert [h["precision"] for h in h32] == ["fp32"] * 3
    assert h16[-1]["train_loss"] < h16[0]["train_loss"]
    for a, b in zip(h16, h32):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.05)
    ck = load_checkpoint(tmp_path / "16" / "checkpoint.pt")
    assert ck["scaler"]["scale"] > 0 and ck["config"]["precision"] == "fp16"


def _one_step(splits, tmp_path, init_scale):
    t = Trainer(config(precision="fp16"), splits["train"], None, tmp_path, progress=False)
    state = t._fresh_state()
    state.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    step = t._training_step(state)
    before = {k: v.clone() for k, v in state.model.state_dict().items() if v.is_floating_point()}
    loss = step(torch.arange(8), state.gen)
    after = state.model.state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before if "running" not in k)
    return state, state.opt, loss, changed


def test_a_step_with_inf_gradients_is_skipped(splits, tmp_path):
    # a scale of 2^100 overflows the float16 gradients to inf: no update, the scale halves
    t, opt, loss, changed = _one_step(splits, tmp_path / "inf", 2.0 ** 100)
    assert torch.isfinite(loss)
    assert not changed and not opt.state  # Adam never stepped
    assert t.scaler.get_scale() == 2.0 ** 99
    # control: a moderate scale updates the weights and keeps the scale
    t, opt, _, changed = _one_step(splits, tmp_path / "ok", 2.0 ** 8)
    assert changed and opt.state and t.scaler.get_scale() == 2.0 ** 8


def test_resume_restores_the_scaler_state_exactly(splits, tmp_path):
    cfg = config(precision="fp16", epochs=3)
    whole = Trainer(cfg, splits["train"], None, tmp_path / "whole", progress=False)
    whole.fit()

    cut = tmp_path / "cut"
    with pytest.raises(StopTraining):
        Trainer(cfg, splits["train"], None, cut, progress=False, callback=stop_after(1)).fit()
    saved = load_checkpoint(cut / "checkpoint.pt")
    assert saved["epoch"] == 1
    # the default start is scale 65536 with no growth yet: the checkpoint holds a changed state
    assert saved["scaler"] != torch.amp.GradScaler("cpu").state_dict()
    resumed = Trainer(cfg, splits["train"], None, cut, progress=False)
    state = resumed._fresh_state()
    state.restore(saved, cfg, resumed.dist, cut / "checkpoint.pt")
    assert state.scaler.state_dict() == saved["scaler"]
    resumed.fit()
    assert load_checkpoint(cut / "checkpoint.pt")["scaler"] == \
        load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["scaler"]
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_precision_option(tmp_path, capsys):
    from colorlab.cli import _build_parser, main

    assert main(["train", "--dataset", "sample", "--precision", "fp16", "--device", "cpu",
                 "--epochs", "1", "--width", "0.0625", "--size", "16", "--batch-size", "16",
                 "--run-dir", str(tmp_path / "run")]) == 0
    history = (tmp_path / "run" / "history.json").read_text()
    assert '"precision": "fp16"' in history
    # (fp32: a CPU has no fast float16 matmul, and the ceiling's 1024^3 products would be slow)
    assert main(["bench", "train", "--precision", "fp32", "--device", "cpu", "--batch", "2",
                 "--size", "16", "--width", "0.0625", "--steps", "1", "--repeats", "1",
                 "--no-compile"]) == 0
    assert "precision fp32" in capsys.readouterr().out
    assert _build_parser().parse_args(["reproduce", "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        _build_parser().parse_args(["train", "--run-dir", "x", "--precision", "fp8"])
