"""Fault corpus: nothing is lost and no traceback reaches a user.

Each class of failure a hostile test found is covered here: results never replaced by a smaller
run, transactional ``--overwrite``, locks against concurrent processes (and stale locks left by
``kill -9``), a full disk while checkpointing, one-line CLI errors for bad files, devices and
settings, EXIF orientation, decompression bombs, and library inputs that must raise a clear
``ValueError``/``TypeError`` or work. (``tests/test_train.py`` kills training with ``kill -9``
and checks the bit-exact resume.)
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorlab as cl
import colorlab.colorize
import colorlab.data
import colorlab.images
import colorlab.losses
import colorlab.reproduce
import colorlab.transforms
import colorlab.checkpoint
import colorlab.evaluate
import colorlab.metrics
import colorlab.paired_differences
import colorlab.prior
import colorlab.train
from colorlab import checkpoint as ckmod
from colorlab.checkpoint import CheckpointError, atomic_save, atomic_write_many
from colorlab.folder_lock import FolderLock, FolderLocked
from colorlab.cli import main
from colorlab.reproduce import PROFILES
from colorlab.results_folder import ResultsExist

TINY = ["--dataset", "sample", "--loss", "ce", "--epochs", "1", "--width", "0.0625", "--size",
        "16", "--batch-size", "16", "--device", "cpu"]


def one_error_line(capsys) -> str:
    """The CLI's stderr: exactly one line, starting with ``colorlab``, no traceback."""
    err = capsys.readouterr().err
    # what a terminal shows of each line: a closed progress bar leaves only carriage returns
    lines = [line.split("\r")[-1] for line in err.split("\n") if line.split("\r")[-1].strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("colorlab") and "Traceback" not in err, err
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    return run / "model.pt"


# ------------------------------------------------------------------ results never shrink
def fake_results(folder: Path, profile: str = "full", datasets=("celeba", "fruits"),
                 bench: bool = True) -> dict:
    folder.mkdir(parents=True)
    prov = {"profile": PROFILES[profile].record(), "device": "NVIDIA H100 80GB HBM3",
            "datasets": {ds: {} for ds in datasets}}
    if bench:
        prov["bench_train"] = {}
    (folder / "provenance.json").write_text(json.dumps(prov))
    for ds in datasets:
        (folder / ds).mkdir()
        (folder / ds / "metrics.json").write_text("{}")
    return tree_digest(folder)


@pytest.mark.parametrize("recorded,argv", [
    ("full", ["--profile", "ci"]),                        # sample data where it had real data
    ("ci", ["--profile", "ci", "--epochs", "1"]),         # fewer epochs
])
def test_a_larger_run_is_never_replaced_by_a_smaller_one(tmp_path, capsys, recorded, argv,
                                                         monkeypatch):
    out = tmp_path / "results"
    before = fake_results(out, recorded)
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", *argv, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "larger reproduction" in line and "--out" in line and "--force" in line
    assert tree_digest(out) == before


def test_the_ci_profile_writes_beside_the_recorded_run_by_default(tmp_path, monkeypatch):
    import colorlab.reproduce

    seen = {}
    monkeypatch.setattr(colorlab.reproduce, "reproduce", lambda out, **kw: seen.update(out=out))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--profile", "ci"]) == 0
    assert seen["out"] == "results-ci"


def test_a_run_that_leaves_out_a_dataset_or_the_benchmark_is_refused(tmp_path):
    out = tmp_path / "results"
    before = fake_results(out, "ci")
    with pytest.raises(ResultsExist, match="celeba, which this one"):
        cl.reproduce.reproduce(out, profile="ci", datasets=("fruits",), bench=True,
                               work_dir=tmp_path / "w")
    with pytest.raises(ResultsExist, match="bench"):
        cl.reproduce.reproduce(out, profile="ci", datasets=("celeba", "fruits"),
                               work_dir=tmp_path / "w")
    assert tree_digest(out) == before


def test_an_unfinished_larger_run_is_not_discarded(tmp_path):
    out = tmp_path / "results"
    partial = tmp_path / ".results.partial" / "celeba"
    partial.mkdir(parents=True)
    key = {"profile": PROFILES["full"].record(), "classifier": None, "sources": "x"}
    (partial / "dataset.json").write_text(json.dumps({"key": key, "manifest_hash": "m"}))
    with pytest.raises(ResultsExist, match="unfinished larger"):
        cl.reproduce.reproduce(out, profile="ci", work_dir=tmp_path / "w")
    assert (partial / "dataset.json").is_file()


def test_force_replaces_it(tmp_path, monkeypatch):
    import colorlab.reproduce as rep

    out = tmp_path / "results"
    fake_results(out)
    monkeypatch.setattr(rep, "_reproduce_into", lambda folder, *a: {"replaced": folder.path})
    assert rep.reproduce(out, profile="ci", force=True, work_dir=tmp_path / "w") == \
        {"replaced": out}


# ------------------------------------------------------------------ transactional writes
def test_overwrite_keeps_every_earlier_output_when_a_write_fails(model_file, tmp_path,
                                                                 monkeypatch, capsys):
    from skimage import data

    for name, img in (("a", data.chelsea()), ("b", data.astronaut())):
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    earlier = {name: f"earlier {name}".encode() for name in ("a", "b")}
    for name, content in earlier.items():
        (out / f"{name}_colorized.png").write_bytes(content)
    real_fdopen, opened = os.fdopen, []

    def full_disk_on_second_file(fd, *args, **kwargs):
        fh = real_fdopen(fd, *args, **kwargs)
        opened.append(fh)
        if len(opened) == 2:
            def write(_):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            fh.write = write
        return fh

    monkeypatch.setattr(ckmod.os, "fdopen", full_disk_on_second_file)
    argv = ["colorize", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--checkpoint",
            str(model_file), "--out", str(out), "--overwrite"]
    assert main(argv) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["a_colorized.png", "b_colorized.png"]
    for name, content in earlier.items():
        assert (out / f"{name}_colorized.png").read_bytes() == content
    monkeypatch.undo()
    assert main(argv) == 0  # and with room on the disk, both are replaced
    assert all(Image.open(out / f"{n}_colorized.png").mode == "RGB" for n in ("a", "b"))


def test_a_failed_rename_restores_the_earlier_files(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # b's new file, after a's was placed and b's old one moved aside
            raise OSError(errno.EIO, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(ckmod.os, "replace", replace)
    with pytest.raises(OSError):
        atomic_write_many({a: b"new a", b: b"new b"})
    monkeypatch.undo()
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


# ------------------------------------------------------------------ a full disk
class FillsUp:
    """A file object that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_checkpoint(
        tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_mkstemp, real_fdopen, names = ckmod.tempfile.mkstemp, os.fdopen, []

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        names.append(Path(name).name)
        return fd, name

    def fdopen(fd, *args, **kwargs):
        fh = real_fdopen(fd, *args, **kwargs)
        checkpoints = [n for n in names if n.startswith(".checkpoint.pt.")]
        if names[-1].startswith(".checkpoint.pt.") and len(checkpoints) == 2:
            return FillsUp(fh, 4096)  # the disk fills up during the second checkpoint
        return fh

    monkeypatch.setattr(ckmod.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(ckmod.os, "fdopen", fdopen)
    assert main(["train", *TINY[:5], "2", *TINY[6:], "--run-dir", str(run)]) == 2
    line = one_error_line(capsys)
    assert "could not write" in line and "checkpoint.pt" in line and "No space left" in line
    assert "inline_container" not in line
    monkeypatch.undo()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1  # the last good one
    assert not list(run.glob(".*.tmp"))
    assert main(["train", *TINY[:5], "2", *TINY[6:], "--run-dir", str(run)]) == 0  # resumes


# ------------------------------------------------------------------ locks
def hold_lock(folder: Path, lock_file: Path | None = None) -> subprocess.Popen:
    """A second process that takes ``folder``'s lock and sleeps."""
    code = ("import sys, time; from pathlib import Path; from colorlab.folder_lock import "
            "FolderLock; FolderLock(Path(sys.argv[1]), 'folder', "
            "Path(sys.argv[2]) if sys.argv[2] else None).acquire(); print('locked', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(lock_file or "")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_train_on_a_locked_run_folder_stops_then_a_killed_holder_does_not_block(
        tmp_path, capsys):
    run = tmp_path / "run"
    holder = hold_lock(run, run / ".lock")
    try:
        assert main(["train", *TINY, "--run-dir", str(run)]) == 2
        line = one_error_line(capsys)
        assert f"in use by process {holder.pid}" in line
        assert not (run / "checkpoint.pt").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / ".lock").exists()  # the killed holder's lock file stays, and does not block
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0


def test_two_train_processes_on_one_run_folder(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "colorlab", "train", *TINY[:5], "200", *TINY[6:],
           "--run-dir", str(run)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / ".lock").is_file() or not (run / ".lock").read_text().strip():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"colorlab: error: {run} is in use by process {first.pid} (another colorlab "
            f"command on this run folder); wait for it to finish, or use another run folder")
        assert first.poll() is None  # the first one goes on, untouched
    finally:
        first.kill()
        first.wait()


def test_a_second_reproduce_on_one_output_stops(tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    holder = hold_lock(out)
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["reproduce", "--profile", "ci", "--out", str(out)]) == 2
        assert f"in use by process {holder.pid}" in one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_in_the_same_process_is_refused_too(tmp_path):
    with FolderLock(tmp_path / "x", "run folder"):
        with pytest.raises(FolderLocked, match=f"process {os.getpid()}"):
            FolderLock(tmp_path / "x", "run folder").acquire()
    FolderLock(tmp_path / "x").acquire().release()  # released with the block


# ------------------------------------------------------------------ one line, never a traceback
def bomb_png(path: Path) -> Path:
    """A small PNG that declares 20000 x 20000 pixels (400 MP, over twice Pillow's limit)."""
    Image.new("1", (20000, 20000)).save(path)
    return path


@pytest.fixture
def files(tmp_path):
    (tmp_path / "empty.pt").touch()
    torch.save({"format": 1, "model": {}}, tmp_path / "noconfig.pt")
    torch.save({"format": 1, "model": {}, "config": {"size": "x"}}, tmp_path / "badconfig.pt")
    torch.save({"format": 1, "model": {"w": torch.ones(1)}, "config": {}}, tmp_path / "badw.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    (tmp_path / "folder").mkdir()
    bomb_png(tmp_path / "bomb.png")
    Image.new("RGB", (24, 16), "red").save(tmp_path / "ok.png")
    Image.new("RGB", (24, 16), "blue").save(tmp_path / "ok_colorized.png")
    (tmp_path / "text.jpg").write_text("hello")
    return tmp_path


@pytest.mark.parametrize("argv,message", [
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/empty.pt"], "is empty (0 bytes)"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/noconfig.pt"], "it lacks 'config'"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/badconfig.pt"], "its config does not match"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/badw.pt"], "weights do not fit"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/list.pt"], "not a colorlab checkpoint"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{d}/folder"], "is a folder, not a checkpoint"),
    (["colorize", "{d}/folder", "--checkpoint", "{model}"], "is a folder; pass image files"),
    (["colorize", "{d}/bomb.png", "--checkpoint", "{model}"], "too many pixels"),
    (["colorize", "{d}/text.jpg", "--checkpoint", "{model}"], "not a readable image"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{model}", "--out", "{d}/ok.png"], "is a file"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{model}", "--temperature", "nan"],
     "temperature must be a finite number > 0"),
    (["colorize", "{d}/ok.png", "--checkpoint", "{model}", "--device", "gpu"],
     "not a torch device name"),
    (["evaluate", "--checkpoint", "{d}/empty.pt", "--classifier", "none", "--size", "16"],
     "is empty (0 bytes)"),
    (["evaluate", "--checkpoint", "{model}", "--classifier", "none", "--size", "16", "--out",
      "{d}/ok.png"], "exists; pass --overwrite"),
    # --out is checked before the evaluation runs, not after it
    (["evaluate", "--checkpoint", "{model}", "--classifier", "none", "--size", "16", "--out",
      "{d}/folder", "--overwrite"], "{d}/folder is a folder, not a file; remove it or choose another --out"),
    (["evaluate", "--checkpoint", "{model}", "--classifier", "none", "--size", "16", "--out",
      "{d}/ok.png/m.json"], "ok.png is a file, not a folder"),
    (["evaluate", "--checkpoint", "{model}", "--classifier", "none", "--size", "16", "--out",
      "{model}", "--overwrite"], "is one of the checkpoints"),
    (["colorize", "{d}/ok.png", "{d}/ok_colorized.png", "--checkpoint", "{model}", "--out", "{d}",
      "--overwrite"], "would overwrite the input {d}/ok_colorized.png"),
    (["bench", "train", "--size", "16", "--width", "0.0625", "--json", "{d}/ok.png"],
     "exists; pass --overwrite to replace it, or choose another --json"),
    (["train", *TINY, "--run-dir", "{d}/ok.png"], "is a file"),
    (["train", *TINY[:-2], "--device", "cuda:99", "--run-dir", "{d}/r"], "CUDA"),
    (["reproduce", "--profile", "ci", "--out", "{d}/ok.png"], "is a file"),
    (["train", "--epochs", "0", "--run-dir", "{d}/r"], "must be a positive integer"),
    (["bench", "fly"], "invalid choice"),
])
def test_cli_errors_are_one_line(files, model_file, capsys, argv, message):
    argv = [a.format(d=files, model=model_file) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    assert code == 2
    assert message.format(d=files) in one_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_so_not_corrupt_checkpoint(model_file, files, capsys):
    assert main(["colorize", str(files / "ok.png"), "--checkpoint", str(model_file), "--out",
                 str(files / "o"), "--device", "cuda"]) == 2
    line = one_error_line(capsys)
    assert "no CUDA GPU" in line and "corrupt" not in line


def test_divergence_is_one_line(tmp_path, capsys, monkeypatch):
    import colorlab.training_step

    monkeypatch.setattr(colorlab.training_step.TrainingStep, "__call__",
                        lambda self, *a: torch.tensor(float("nan")))
    assert main(["train", *TINY, "--run-dir", str(tmp_path / "run")]) == 2
    assert "training diverged" in one_error_line(capsys)


def test_an_unexpected_error_is_one_line_with_a_way_to_see_more(capsys, monkeypatch):
    monkeypatch.setattr("colorlab.cli.info_lines", lambda: {}["boom"])
    assert main(["info"]) == 1
    assert "internal error: KeyError" in one_error_line(capsys)
    monkeypatch.setenv("COLORLAB_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["info"])


def test_an_empty_data_setting_is_the_default_not_the_current_folder(monkeypatch):
    from colorlab.settings import data_root

    monkeypatch.setenv("COLORLAB_DATA", "")
    assert data_root() == Path("data")


# ------------------------------------------------------------------ images and datasets
def exif_rotated_jpeg(path: Path) -> Path:
    """A 40 x 20 JPEG (left half red) whose EXIF says: rotate 90 degrees clockwise to view."""
    img = Image.new("RGB", (40, 20), "blue")
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)
    return path


def test_exif_orientation_is_honoured(tmp_path, model_file):
    from PIL import ImageOps

    path = exif_rotated_jpeg(tmp_path / "rot.jpg")
    upright = ImageOps.exif_transpose(Image.open(path))
    img = cl.images.read_rgb(path)
    assert img.shape == (3, 40, 20) == (3, upright.height, upright.width)
    assert img[0, 5, 10] > 200 and img[2, 35, 10] > 200  # red on top after the rotation
    out = cl.colorize.colorize_files([path], model_file, tmp_path / "out")
    assert Image.open(out[0]).size == upright.size


def test_a_dataset_skips_bombs_and_stray_files_and_counts_them(tmp_path):
    root = tmp_path / "fruits-10"
    for cls in ("apple", "kiwi"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (20, 20), "green").save(root / cls / "a.png")
    bomb_png(root / "kiwi" / "bomb.png")
    Image.new("RGB", (20, 20)).save(root / "stray.jpg")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = cl.data.Fruits10(tmp_path, size=8, cache=False)
    assert ds.files == ["apple/a.png", "kiwi/a.png"] and ds.classes == ["apple", "kiwi"]
    assert any("not in a class folder" in s for s in ds.skipped)
    assert any("too many pixels" in s for s in ds.skipped)


# ------------------------------------------------------------------ library inputs
@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_rebalancing_weights_must_be_finite_and_non_negative(bad):
    w = torch.ones(313)
    w[7] = bad
    with pytest.raises(ValueError, match="weights"):
        cl.RebalancedCrossEntropy(w)
    with pytest.raises(ValueError, match="weights"):
        cl.losses.rebalanced_cross_entropy(torch.zeros(1, 313, 2, 2), torch.zeros(1, 2, 2, 2), w)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_the_network_takes_any_float_input_and_returns_float32(dtype):
    net = cl.ColorizationNet(width=0.0625).eval()
    L = torch.rand(1, 1, 16, 16) * 100
    out = net(L.to(dtype))
    assert out.dtype == torch.float32
    assert torch.allclose(out, net(L.to(dtype).float()), atol=1e-5)
    half = cl.ColorizationNet(width=0.0625).to(dtype).eval()
    assert half(L).dtype == torch.float32  # a converted network takes float32 input too


@pytest.mark.parametrize("call", [
    lambda: cl.rgb_to_lab(torch.zeros(1, 3, 0, 4)),
    lambda: cl.lab_to_rgb(torch.zeros(1, 3, 4, 0)),
    lambda: cl.soft_encode(torch.zeros(1, 2, 0, 4)),
    lambda: cl.ColorizationNet(width=0.0625)(torch.zeros(1, 1, 0, 16)),
    lambda: cl.ColorizationNet(width=0.0625).colorize(torch.zeros(1, 1, 0, 16)),
    lambda: cl.annealed_mean(torch.zeros(1, 313, 0, 4)),
    lambda: cl.auc(torch.zeros(1, 2, 0, 4), torch.zeros(1, 2, 0, 4)),
    lambda: cl.RebalancedCrossEntropy()(torch.zeros(1, 313, 0, 2), torch.zeros(1, 2, 0, 2)),
])
def test_inputs_of_height_zero_are_a_clear_error(call):
    with pytest.raises(ValueError, match="empty"):
        call()


def test_a_prior_of_the_wrong_length_names_the_prior():
    y = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"prior must have shape \(313,\)"):
        cl.rebalanced_auc(y, y, torch.full((312,), 1 / 312))


@pytest.mark.parametrize("sigma", [1e-300, 1e-30, 1e-3, 1e30, 1e300])
def test_soft_encode_takes_any_finite_sigma(sigma):
    ab = torch.tensor([[[[5.0, 3.0]], [[0.0, 1.0]]]])  # a tie between two bins, and a near point
    idx, w = cl.soft_encode(ab, k=5, sigma=sigma)
    assert torch.isfinite(w).all() and torch.allclose(w.sum(dim=1), torch.ones(1, 1, 2))
    if sigma < 1e-3:  # the one-hot limit, the tie shared
        assert w[0, :2, 0, 0].tolist() == [0.5, 0.5] and w[0, 0, 0, 1] == 1.0
    if sigma > 1e3:  # the uniform limit
        assert torch.allclose(w, torch.full_like(w, 0.2))


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf"), "5", True])
def test_soft_encode_refuses_a_sigma_that_is_not_a_finite_positive_number(sigma):
    with pytest.raises(ValueError, match="sigma"):
        cl.soft_encode(torch.zeros(1, 2, 1, 1), sigma=sigma)


def test_atomic_save_leaves_no_temporary_file_when_pickling_fails(tmp_path):
    with pytest.raises(Exception):
        atomic_save({"f": lambda: 0}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ partial GPU work is kept
def test_a_docstring_or_comment_edit_keeps_the_source_hash(tmp_path, monkeypatch):
    import shutil

    import colorlab.source_code as sc

    copy = tmp_path / "colorlab"
    shutil.copytree(Path(sc.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sc, "__file__", str(copy / "source_code.py"))
    before = sc.source_hash()
    losses = copy / "losses.py"
    text = losses.read_text()
    losses.write_text(text.replace('"""Losses of the report', '"""Losses (typo fixed) of the report')
                      .replace("    return _reduce(", "    # a comment\n    return _reduce(", 1))
    (copy / "cli.py").write_text((copy / "cli.py").read_text() + "\nX = 1\n")  # a front end
    assert sc.source_hash() == before
    losses.write_text(text.replace("0.5 * (pred_ab - ab)", "0.25 * (pred_ab - ab)"))
    assert sc.source_hash() != before


# ------------------------------------------------------------------ user files are never overwritten
def test_a_results_folder_with_other_files_is_not_replaced(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--profile", "ci", "--out", str(out)]) == 2
    assert "not a colorlab reproduction (e.g. notes.txt)" in one_error_line(capsys)
    assert (out / "notes.txt").read_text() == "my notes"
    # a file that is merely named provenance.json does not make the folder a reproduction
    (out / "provenance.json").write_text('{"my": 1}')
    assert main(["reproduce", "--profile", "ci", "--out", str(out)]) == 2
    assert "not a colorlab reproduction (e.g. notes.txt)" in one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "provenance.json"]


def test_a_run_folder_with_other_files_of_those_names_is_not_written(tmp_path, capsys):
    run = tmp_path / "project"
    run.mkdir()
    (run / "config.json").write_text('{"mine": 1}')
    (run / "history.json").write_text("[my history]")
    assert main(["train", *TINY, "--run-dir", str(run)]) == 2
    assert "no checkpoint.pt of this run" in one_error_line(capsys)
    assert (run / "config.json").read_text() == '{"mine": 1}'
    assert (run / "history.json").read_text() == "[my history]"


def test_overwrite_never_replaces_a_folder(model_file, tmp_path, capsys):
    Image.new("RGB", (24, 16), "red").save(tmp_path / "one.png")
    (tmp_path / "out" / "one_colorized.png").mkdir(parents=True)
    (tmp_path / "out" / "one_colorized.png" / "keep.txt").write_text("keep")
    assert main(["colorize", str(tmp_path / "one.png"), "--checkpoint", str(model_file), "--out",
                 str(tmp_path / "out"), "--overwrite"]) == 2
    assert "one_colorized.png is a folder, not a file" in one_error_line(capsys)
    assert (tmp_path / "out" / "one_colorized.png" / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("argv", [
    ["evaluate", "--checkpoint", "{model}", "--classifier", "none", "--size", "16", "--out",
     "{d}/afile/x.json"],
    ["reproduce", "--profile", "ci", "--out", "{d}/afile/results"],
    ["colorize", "{d}/ok.png", "--checkpoint", "{model}", "--out", "{d}/afile/out"],
])
def test_a_file_in_the_way_of_an_output_folder_is_named(files, model_file, capsys, argv):
    (files / "afile").write_text("a file")
    assert main([a.format(d=files, model=model_file) for a in argv]) == 2
    assert f"{files / 'afile'} is a file" in one_error_line(capsys)


@pytest.mark.parametrize("call,match", [
    (lambda: cl.annealed_mean(torch.zeros(1, 313, 1, 1), T=10 ** 400), "T must be"),
    (lambda: cl.soft_encode(torch.zeros(1, 2, 1, 1), sigma=10 ** 400), "sigma must be"),
    (lambda: cl.to_dense(torch.zeros(1, 1, 1, 1, dtype=torch.long), torch.ones(1, 1, 1, 1),
                         num_bins=10 ** 400), "num_bins must be"),
    (lambda: cl.SoftEncoder(bins=[[0.0, 0.0]]), "bins must be a torch.Tensor"),
    (lambda: cl.prior.prior_from_images(torch.zeros(1, 3, 8, 8)), "images must be uint8"),
    (lambda: cl.prior.prior_from_images(torch.zeros(0, 3, 8, 8, dtype=torch.uint8)),
     "images is empty"),
    (lambda: cl.evaluate.predict_ab(cl.ColorizationNet(width=0.0625),
                                    torch.zeros(2, 3, 16, 16, dtype=torch.uint8), batch_size=0),
     "batch_size must be"),
    (lambda: cl.transforms.downsample_ab(torch.zeros(1, 2, 8, 8), stride=0), "stride must be"),
    (lambda: cl.images.read_rgb(None), "path must be a path"),
    (lambda: cl.checkpoint.load_checkpoint(3), "path must be a path"),
    (lambda: cl.prior.empirical_prior(5), "ab_batches must be"),
    (lambda: cl.auc(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), thresholds=None),
     "thresholds must be"),
    (lambda: cl.paired_differences.paired_difference(None, [1.0, 2.0]), "scores_a must be"),
    (lambda: cl.rebalanced_auc(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), -torch.ones(313)),
     "prior must be non-negative"),
    (lambda: cl.rgb_to_lab(torch.full((1, 3, 1, 1), 1e30)), "rgb holds values too large"),
    (lambda: cl.train.TrainConfig(width=1e300), "width must be at most"),
    (lambda: cl.train.TrainConfig(k=400), "k must be at most 313"),
    (lambda: cl.train.Trainer(cl.train.TrainConfig(size=16), None, None, "x"), "train_set must be"),
    (lambda: cl.ab_bins(device="meta"), "not a torch device name"),
])
def test_library_inputs_raise_a_named_value_or_type_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_annealed_mean_and_smoothing_take_extreme_parameters():
    uniform = torch.zeros(1, 313, 1, 1)
    assert torch.isfinite(cl.annealed_mean(uniform, T=1e-300)).all()
    p = torch.rand(313, dtype=torch.float64)
    for sigma in (1e-300, 1e300):
        smoothed = cl.smooth_prior(p, sigma=sigma)
        assert torch.isfinite(smoothed).all() and smoothed.sum().item() == pytest.approx(1.0)
    assert torch.allclose(cl.smooth_prior(p, sigma=1e-300), p / p.sum())


def test_an_unwritable_folder_is_named_not_a_hidden_temporary_file(tmp_path, monkeypatch):
    """A folder the user cannot write to: the message names the target and its folder (not the
    hidden temporary file of the atomic write), and ``--out`` is refused before any work."""
    from colorlab.checkpoint import atomic_write_text, check_output_file

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".m.json.x.tmp"))

    monkeypatch.setattr(ckmod.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"cannot write {tmp_path}/m.json: the folder "
                                              f"{tmp_path} is not writable") as err:
        atomic_write_text("{}", tmp_path / "m.json")
    assert ".tmp" not in str(err.value)
    monkeypatch.setattr(ckmod.os, "access", lambda *args: False)
    with pytest.raises(PermissionError, match=f"the folder {tmp_path} is not writable; choose "
                                              f"another --json"):
        check_output_file(tmp_path / "sub" / "r.json", option="--json")


def test_a_run_killed_between_best_pt_and_its_first_checkpoint_resumes(tmp_path):
    """``best.pt`` is written just before the checkpoint that covers it: a run killed between
    the two leaves config.json and best.pt only, which is this run's own work (it trains again
    from the start); a best.pt of another configuration is still refused."""
    from colorlab.data import SampleImages
    from colorlab.train import TrainConfig, Trainer

    splits = SampleImages(size=16, n=20).splits()
    config = TrainConfig(loss="ce", width=0.0625, epochs=1, batch_size=4, size=16)
    run = tmp_path / "run"
    Trainer(config, splits["train"], splits["val"], run, progress=False).fit()
    for name in ("checkpoint.pt", "history.json", "model.pt", "done.json"):
        (run / name).unlink()  # as if killed after best.pt was written
    history = Trainer(config, splits["train"], splits["val"], run, progress=False).fit()
    assert len(history) == 1 and (run / "checkpoint.pt").is_file()
    other = tmp_path / "other"
    Trainer(dataclasses.replace(config, lr=1e-4), splits["train"], splits["val"], other,
            progress=False).fit()
    for name in ("checkpoint.pt", "history.json", "model.pt", "done.json"):
        (other / name).unlink()
    (other / "config.json").write_text(json.dumps(config.to_dict()))  # config matches, best.pt not
    with pytest.raises(cl.checkpoint.CheckpointError, match="holds config.json, best.pt"):
        Trainer(config, splits["train"], splits["val"], other, progress=False).fit()


def test_rebalancing_weights_that_would_train_nothing_or_be_ignored_are_refused():
    from colorlab.data import SampleImages
    from colorlab.train import TrainConfig, Trainer

    splits = SampleImages(size=16, n=12).splits()
    rebal = TrainConfig(loss="rebal", width=0.0625, epochs=1, batch_size=4, size=16)
    with pytest.raises(ValueError, match="all zero: every pixel's loss would be multiplied by 0"):
        Trainer(rebal, splits["train"], None, "unused", weights=torch.zeros(313))
    with pytest.raises(ValueError, match="all zero"):
        cl.RebalancedCrossEntropy(weights=torch.zeros(313))
    with pytest.raises(TypeError, match="weights must be a torch.Tensor"):
        Trainer(rebal, splits["train"], None, "unused", weights=[1.0] * 313)
    with pytest.raises(ValueError, match="used only by loss='rebal', and config.loss is 'ce'"):
        Trainer(dataclasses.replace(rebal, loss="ce"), splits["train"], None, "unused",
                weights=torch.ones(313))


@pytest.mark.parametrize("damage, message", [
    (lambda ck: {k: v for k, v in ck.items() if k not in ("optimizer", "scheduler")},
     "not a resumable checkpoint: it lacks optimizer, scheduler (a model.pt or best.pt"),
    (lambda ck: {**ck, "epoch": "x"}, "is damaged and cannot be resumed (ValueError"),
    (lambda ck: {**ck, "history": None}, "is damaged and cannot be resumed (TypeError"),
    (lambda ck: {**ck, "generator": torch.zeros(3, dtype=torch.uint8)},
     "is damaged and cannot be resumed (RuntimeError"),
    (lambda ck: {**ck, "scheduler": 3}, "is damaged and cannot be resumed (AttributeError"),
    (lambda ck: {**ck, "history": []}, "at epoch 1 with 0 epochs of history, in a run of 1"),
    (lambda ck: {**ck, "epoch": 99}, "at epoch 99 with 1 epochs of history"),
    (lambda ck: {**ck, "optimizer": {**ck["optimizer"], "state": {
        k: {**v, "exp_avg": torch.zeros(1)} for k, v in ck["optimizer"]["state"].items()}}},
     "the optimizer's exp_avg has shape (1,)"),
])
def test_a_damaged_or_final_weights_checkpoint_is_one_clear_error(tmp_path, capsys, damage,
                                                                    message):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    capsys.readouterr()
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(damage(ck), run / "checkpoint.pt")
    assert main(["train", *TINY, "--run-dir", str(run)]) == 2
    assert message in one_error_line(capsys)


def test_a_run_folder_is_never_resumed_on_other_images(tmp_path, capsys):
    """The checkpoint records its training set (run_state.data_fingerprint): a finished run is
    not reported as trained on other images, nor a partial one continued on them."""
    from colorlab.data import SampleImages
    from colorlab.train import TrainConfig, Trainer

    config = TrainConfig(loss="ce", width=0.0625, epochs=1, batch_size=4, size=16)
    first, other = (SampleImages(size=16, n=20, seed=s).splits() for s in (0, 1))
    Trainer(config, first["train"], first["val"], tmp_path, progress=False).fit()
    with pytest.raises(cl.checkpoint.CheckpointError, match="trained on other images"):
        Trainer(config, other["train"], other["val"], tmp_path, progress=False).fit()
    history = Trainer(config, first["train"], first["val"], tmp_path, progress=False).fit()
    assert len(history) == 1  # the same images: the finished run, as before


def test_reproduce_never_reuses_a_finished_run_of_another_profile(tmp_path, capsys):
    """A work folder's finished run is reused only with its own configuration: asked for more
    epochs, reproduce does not label the old run's numbers with the new profile. The refusal
    comes before any work, so the refused call is no call of a reproduction (it used to start
    one, whose provenance then counted it)."""
    common = ["reproduce", "--profile", "ci", "--work-dir", str(tmp_path / "work"), "--seeds",
              "1", "--datasets", "fruits", "--classifier", "none", "--quiet"]
    assert main([*common, "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "b")]) == 2
    line = one_error_line(capsys)
    assert "belongs to a run with another config (differs in" in line and "--work-dir" in line
    assert not (tmp_path / "b").exists() and not (tmp_path / ".b.partial").exists()


def test_reproduce_into_the_current_folder_is_refused_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["reproduce", "--profile", "ci", "--out", "."]) == 2  # work: ./runs/ci
    assert "the work folder runs/ci (--work-dir) lies inside" in one_error_line(capsys)
    assert main(["reproduce", "--profile", "ci", "--out", ".", "--work-dir",
                 str(tmp_path.parent / "work")]) == 2
    assert f"{tmp_path} holds files that are not a colorlab reproduction" in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("call, error, message", [
    (lambda: cl.SoftEncoder(k=0), ValueError, "k must be a positive integer, got 0"),
    (lambda: cl.RebalancedCrossEntropy(k=400), ValueError, "k must be"),
    (lambda: cl.to_dense(torch.zeros(1, 1, 1, 1, dtype=torch.long),
                         torch.ones(1, 1, 1, 1, dtype=torch.long)), TypeError,
     "w must be a floating-point tensor"),
    (lambda: cl.ColorizationNet("regression", width=0.0625).colorize(torch.rand(1, 1, 8, 8),
                                                                     T=0), ValueError,
     "T must be a finite number > 0"),
])
def test_bad_arguments_are_refused_when_given_not_later(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_float_image_with_nan_pixels_is_unreadable_not_black(tmp_path):
    from colorlab.images import UnreadableImage, read_rgb

    pixels = np.full((4, 5), 0.5, dtype=np.float32)
    pixels[1, 2] = np.nan
    Image.fromarray(pixels, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(UnreadableImage, match="NaN or infinite pixel values"):
        read_rgb(tmp_path / "nan.tif")


def test_the_folder_lock_is_still_importable_from_where_it_was():
    from colorlab.checkpoint import FolderLock as old_name
    import colorlab.folder_lock

    assert old_name is colorlab.folder_lock.FolderLock
    assert ckmod.FolderLocked is colorlab.folder_lock.FolderLocked
    with pytest.raises(AttributeError, match="has no attribute 'FolderLook'"):
        ckmod.FolderLook


def test_reproduce_deletes_nothing_it_did_not_write(tmp_path, capsys, monkeypatch):
    """The results folder is replaced as a whole: a file added to a finished reproduction, a
    work folder inside it, and an unfinished reproduction of other settings are each refused
    (one line, nothing touched) unless --force."""
    monkeypatch.chdir(tmp_path)
    common = ["reproduce", "--profile", "ci", "--seeds", "1", "--datasets", "fruits",
              "--classifier", "none", "--epochs", "1", "--quiet"]
    assert main([*common, "--out", "out", "--work-dir", "work"]) == 0
    capsys.readouterr()
    (tmp_path / "out" / "my_analysis.md").write_text("mine")
    assert main([*common, "--out", "out", "--work-dir", "work2", "--epochs", "2"]) == 2
    assert "did not write (e.g. my_analysis.md)" in one_error_line(capsys)
    assert (tmp_path / "out" / "my_analysis.md").read_text() == "mine"
    (tmp_path / "here").mkdir()
    assert main([*common, "--out", "here", "--work-dir", "here/runs"]) == 2
    assert "lies inside the results folder here" in one_error_line(capsys)
    assert not any((tmp_path / "here").iterdir())
    partial = tmp_path / ".other.partial" / "fruits"
    partial.mkdir(parents=True)
    (partial / "dataset.json").write_text(json.dumps({"key": {"profile": "x"}}))
    assert main([*common, "--out", "other", "--work-dir", "work"]) == 2
    assert "unfinished reproduction (fruits) made with other settings" in one_error_line(capsys)
    assert (partial / "dataset.json").is_file()
    assert main([*common, "--out", "other", "--work-dir", "work", "--force"]) == 0


def test_the_same_file_names_with_other_pixels_are_other_images(tmp_path):
    from colorlab.run_state import data_fingerprint
    from colorlab.data import SampleImages

    train = SampleImages(size=16, n=20).splits()["train"]
    changed = cl.data.ColorizationDataset(255 - train.images, train.labels, train.files,
                                          train.classes, train.name, train.size)
    assert data_fingerprint(changed) != data_fingerprint(train)
    assert data_fingerprint(train) == data_fingerprint(SampleImages(size=16, n=20).splits()["train"])


def test_evaluate_reads_every_checkpoint_before_the_data(model_file, tmp_path, capsys,
                                                         monkeypatch):
    import shutil

    missing = ["evaluate", "--checkpoint", str(model_file), "--checkpoint",
               str(tmp_path / "none.pt"), "--classifier", "none", "--size", "16"]
    assert main(missing) == 2
    assert "none.pt" in one_error_line(capsys)
    twice = ["evaluate", "--checkpoint", str(model_file), "--checkpoint", str(model_file),
             "--classifier", "none", "--size", "16"]
    assert main(twice) == 2
    assert "the same --checkpoint is given twice" in one_error_line(capsys)
    shutil.copy(model_file, tmp_path / "Gray")  # named like a baseline's row of the results
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--checkpoint", "Gray", "--classifier", "none", "--size", "16"]) == 2
    assert "--checkpoint Gray has the name of a baseline" in one_error_line(capsys)


def test_a_finished_run_is_evaluated_again_for_another_classifier(tmp_path):
    """A run's evaluation is reused only for the classifier it was made with: asked for the
    ImageNet classifier, a run evaluated without one is evaluated again (it used to come back
    without its accuracy), and the training is not repeated."""
    from colorlab.reproduce import PROFILES
    from colorlab.runs import RunJob, train_and_evaluate

    profile = dataclasses.replace(PROFILES["ci"], epochs=1, seeds=1)
    job = RunJob("fruits", "ce", 0, profile, str(tmp_path), "cpu", prior=(1 / 313,) * 313,
                 weights=(1.0,) * 313, classifier=None)
    first = train_and_evaluate(job)
    assert "classifier_accuracy" not in first["evaluation"]["final"]
    model_pt = tmp_path / "fruits" / "ce" / "seed0" / "model.pt"
    weights = torch.load(model_pt, weights_only=True)["model"]
    again = train_and_evaluate(dataclasses.replace(job, classifier="efficientnet_lite0"))
    assert "classifier_accuracy" in again["evaluation"]["final"]
    after = torch.load(model_pt, weights_only=True)
    assert len(after["history"]) == 1  # not trained again
    assert all(torch.equal(weights[k], v) for k, v in after["model"].items())
    assert train_and_evaluate(dataclasses.replace(job, classifier="efficientnet_lite0")) == again


def test_a_finished_run_without_its_checkpoint_is_evaluated_again_for_another_classifier(tmp_path):
    """Without its checkpoint.pt (deleted to save disk), a finished run is still evaluated
    again for another classifier, from its model.pt and best.pt, with the same result as with
    it (it used to be refused: training would have overwritten its files)."""
    from colorlab.reproduce import PROFILES
    from colorlab.runs import RunJob, check_run_folder, train_and_evaluate

    profile = dataclasses.replace(PROFILES["ci"], epochs=2, seeds=1)
    job = RunJob("fruits", "ce", 0, profile, str(tmp_path / "kept"), "cpu",
                 prior=(1 / 313,) * 313, weights=(1.0,) * 313, classifier=None)
    first = train_and_evaluate(job)
    shutil.copytree(tmp_path / "kept", tmp_path / "deleted")
    (tmp_path / "deleted" / "fruits" / "ce" / "seed0" / "checkpoint.pt").unlink()
    other = dataclasses.replace(job, classifier="efficientnet_lite0")
    with_it = train_and_evaluate(other)
    without = dataclasses.replace(other, work=str(tmp_path / "deleted"))
    check_run_folder(without, first["record"]["data"], torch.device("cpu"))  # not refused
    again = train_and_evaluate(without)
    assert again["evaluation"] == with_it["evaluation"]
    assert "classifier_accuracy" in again["evaluation"]["final"]
    assert again["record"]["resumed_complete"] and again["record"]["epochs"] == 2
    assert not (without.run_dir / "checkpoint.pt").exists()  # nothing was trained
    (without.run_dir / "model.pt").unlink()  # then nothing can be evaluated again: refused first
    with pytest.raises(CheckpointError, match="no checkpoint.pt of this run"):
        check_run_folder(dataclasses.replace(without, classifier=None), first["record"]["data"],
                         torch.device("cpu"))


def test_evaluate_refuses_checkpoints_of_different_sizes(model_file, tmp_path, capsys):
    assert main(["train", *TINY[:-4], "--size", "24", "--device", "cpu",
                 "--run-dir", str(tmp_path / "r24")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(model_file), "--checkpoint",
                 str(tmp_path / "r24" / "model.pt"), "--classifier", "none", "--size", "16"]) == 2
    assert "different sizes (16x16, 24x24); evaluate each size in its own call" in \
        one_error_line(capsys)


def test_a_finished_data_set_is_kept_only_for_the_same_pixels(tmp_path, monkeypatch):
    """A reproduction keeps a data set an earlier call finished only if its images are the same:
    the same names (the manifest) and the same pixels (it used to check the names only)."""
    from colorlab import reproduce as rep
    from colorlab.run_state import data_fingerprint

    kwargs = dict(profile="ci", epochs=1, seeds=1, datasets=("fruits",), classifier=None,
                  progress=False)
    out, logs = tmp_path / "out", []
    rep.reproduce(out, work_dir=tmp_path / "w1", log=lambda *a: None, **kwargs)
    rep.reproduce(out, work_dir=tmp_path / "w1", log=logs.append, **kwargs)
    assert any(line.startswith("fruits: kept") for line in logs)  # the same images: kept
    original = rep.profile_dataset

    def inverted(dataset, profile):  # the same file names, other pixels
        data = original(dataset, profile)
        data.images = 255 - data.images
        return data

    monkeypatch.setattr(rep, "profile_dataset", inverted)
    logs.clear()
    rep.reproduce(out, work_dir=tmp_path / "w2", log=logs.append, **kwargs)
    assert not any("kept" in line for line in logs)
    assert any(line.startswith("fruits/l2: trained 1 epochs") for line in logs)
    record = json.loads((out / "fruits" / "dataset.json").read_text())
    assert record["data"] == data_fingerprint(inverted("fruits", rep.PROFILES["ci"]))


def _damaged_history(run: Path) -> None:
    """A checkpoint that loads but lost its history (what the trainer refuses to resume)."""
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    ck["history"] = []
    torch.save(ck, run / "checkpoint.pt")
    (run / "evaluation.json").unlink()


@pytest.mark.parametrize("defect, error, message", [
    ("foreign", "CheckpointError", "holds model.pt but no checkpoint.pt"),
    ("a file", "NotADirectoryError", "seed0 is a file, not a folder"),
    ("damaged", "CheckpointError", "is damaged and cannot be resumed .*epoch 1 with 0 epochs"),
    ("in use", "FolderLocked", "is in use by process"),
])
def test_reproduce_checks_the_run_folders_before_the_benchmark(tmp_path, monkeypatch, defect,
                                                                error, message):
    """A call refused for a run folder measures nothing first (its benchmark would have counted
    it as a call of the reproduction) and leaves no trace in the results folder: another run's
    files, a file where the folder goes, a checkpoint the trainer would refuse as damaged, and a
    run that another command trains now (each used to be found only when its turn came)."""
    from colorlab import reproduce as rep

    kwargs = dict(profile="ci", epochs=1, seeds=1, datasets=("fruits",), classifier=None,
                  work_dir=tmp_path / "w", progress=False, log=lambda *a: None)
    run = tmp_path / "w" / "fruits" / "rebal" / "seed0"  # the last run of the call
    if defect == "damaged":
        rep.reproduce(tmp_path / "first", **kwargs)
        _damaged_history(run)
    else:
        run.parent.mkdir(parents=True)
        if defect == "a file":
            run.write_text("x")
        else:
            run.mkdir()
        if defect == "foreign":
            (run / "model.pt").write_bytes(b"someone's model")
    before = sorted(p.name for p in tmp_path.iterdir())

    def measured(**kwargs):
        raise AssertionError("the benchmark ran before the check")

    monkeypatch.setattr(rep, "bench_train", measured)
    with FolderLock(run, "run folder", run / ".lock") if defect == "in use" else \
            contextlib.nullcontext():
        with pytest.raises(Exception, match=message) as raised:
            rep.reproduce(tmp_path / "out", bench=True, **kwargs)
    assert type(raised.value).__name__ == error
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no .out.partial


def test_a_finished_run_without_its_checkpoint_is_reused(tmp_path):
    """A finished, evaluated run whose checkpoint.pt was deleted (to save disk: it holds Adam's
    moments) is reused as it is; the check of the run folders does not refuse it."""
    from colorlab.reproduce import reproduce

    kwargs = dict(profile="ci", epochs=1, seeds=1, datasets=("fruits",), classifier=None,
                  progress=False, log=lambda *a: None)
    reproduce(tmp_path / "a", work_dir=tmp_path / "w", **kwargs)
    for ck in (tmp_path / "w").glob("fruits/*/seed0/checkpoint.pt"):
        ck.unlink()
    again = reproduce(tmp_path / "b", work_dir=tmp_path / "w", **kwargs)
    assert again["runs"] and all(r["resumed_complete"] for r in again["runs"].values())


def test_a_checkpoint_that_cannot_be_mapped_is_read_as_a_whole(tmp_path):
    """``load_checkpoint(mmap=True)`` (the run-folder check of reproduce) reads what the trainer
    reads: a checkpoint in torch's legacy (non-zip) format cannot be memory-mapped."""
    from colorlab.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEYS, load_checkpoint

    ck = {key: {} for key in CHECKPOINT_KEYS}
    ck.update(format=CHECKPOINT_FORMAT, config={"loss": "l2"}, model={"w": torch.ones(2)})
    torch.save(ck, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(tmp_path / "legacy.pt", mmap=True)
    assert loaded["config"] == {"loss": "l2"} and torch.equal(loaded["model"]["w"], torch.ones(2))
