"""The colorlab console script: --version, info, bench, and clean errors."""
import json
import subprocess
import sys

import pytest

from colorlab import __version__
from colorlab.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "colorlab", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"colorlab {__version__}"


def test_info_names_versions_device_and_data(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLORLAB_DATA", str(tmp_path))
    (tmp_path / "fruits-10").mkdir()
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "torch " in text and "device " in text and str(tmp_path) in text
    assert "fruits-10: found" in text and "celeba-7k: missing" in text


def test_bad_profile_is_one_clear_line(capsys, monkeypatch):
    monkeypatch.setenv("COLORLAB_PROFILE", "fast")
    assert main(["info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "COLORLAB_PROFILE must be one of" in err[0]


def test_bench_core_prints_ratios(capsys, tmp_path):
    from colorlab.bench import main as bench

    out = tmp_path / "core.json"
    assert bench(["core", "--batch", "2", "--size", "32", "--repeats", "1", "--json",
                  str(out)]) == 0
    text = capsys.readouterr().out
    assert "rgb_to_lab" in text and "soft_encode" in text and "x faster" in text
    assert json.loads(out.read_text())["batch"] == 2  # --json is written for core too


def test_unknown_command_fails():
    out = run("fly")
    assert out.returncode != 0 and "invalid choice" in out.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    out = run("train", "--dataset", "sample", "--loss", "ce", "--run-dir", str(base / "run"),
              "--epochs", "1", "--width", "0.0625", "--size", "16", "--batch-size", "16")
    assert out.returncode == 0, out.stderr
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(base / "cat.jpg")
    (base / "bad.jpg").write_bytes(b"not an image")
    return base


def test_colorize_writes_full_resolution_png(trained):
    from PIL import Image

    out = run("colorize", str(trained / "cat.jpg"), "--checkpoint", str(trained / "run" / "model.pt"),
              "--out", str(trained / "out"), "--temperature", "0.5")
    assert out.returncode == 0, out.stderr
    img = Image.open(trained / "out" / "cat_colorized.png")
    assert img.size == (451, 300) and img.mode == "RGB"


@pytest.mark.parametrize("args,message", [
    (["{base}/cat.jpg", "{base}/bad.jpg"], "not a readable image"),
    (["{base}/missing.jpg"], "does not exist"),
    (["{base}/cat.jpg", "--head", "regression"], "not a regression one"),
    (["{base}/cat.jpg", "--temperature", "-1"], "temperature must be a finite number > 0"),
])
def test_colorize_errors_leave_nothing_behind(trained, args, message):
    target = trained / f"err-{abs(hash(message))}"
    argv = [a.format(base=trained) for a in args]
    out = run("colorize", *argv, "--checkpoint", str(trained / "run" / "model.pt"), "--out", str(target))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorlab: error:") and message in lines[0]
    assert not target.exists()


def test_colorize_bad_checkpoint_and_no_overwrite(trained):
    out = run("colorize", str(trained / "cat.jpg"), "--checkpoint", str(trained / "bad.jpg"),
              "--out", str(trained / "o2"))
    assert out.returncode != 0 and "not a colorlab checkpoint" in out.stderr
    args = ["colorize", str(trained / "cat.jpg"), "--checkpoint", str(trained / "run" / "model.pt"),
            "--out", str(trained / "o3")]
    assert run(*args).returncode == 0
    before = (trained / "o3" / "cat_colorized.png").read_bytes()
    again = run(*args)
    assert again.returncode != 0 and "exists" in again.stderr
    assert (trained / "o3" / "cat_colorized.png").read_bytes() == before


def test_evaluate_prints_metrics(trained):
    out = run("evaluate", "--dataset", "sample", "--checkpoint", str(trained / "run" / "model.pt"),
              "--size", "16", "--classifier", "none", "--out", str(trained / "m.json"))
    assert out.returncode == 0, out.stderr
    assert "Gray: auc" in out.stdout and (trained / "m.json").exists()
    wrong = run("evaluate", "--dataset", "sample", "--checkpoint", str(trained / "run" / "model.pt"),
                "--size", "32", "--classifier", "none")
    assert wrong.returncode != 0 and "--size 16" in wrong.stderr


def test_reproduce_full_on_cpu_is_refused():
    out = run("reproduce", "--profile", "full", "--device", "cpu")
    assert out.returncode != 0 and "needs a CUDA GPU" in out.stderr


@pytest.mark.parametrize("flags, expected", [([], None), (["--compile"], True),
                                             (["--no-compile"], False)])
def test_reproduce_passes_its_options_through(flags, expected, monkeypatch, tmp_path):
    import colorlab.reproduce

    seen = {}
    monkeypatch.setattr(colorlab.reproduce, "reproduce", lambda out, **kw: seen.update(kw, out=out))
    assert main(["reproduce", "--profile", "ci", "--out", str(tmp_path / "r"), "--bench",
                 "--quiet", "--datasets", "fruits", *flags]) == 0
    assert seen["compile"] is expected and seen["bench"] and not seen["progress"]
    assert seen["datasets"] == ("fruits",) and seen["profile"] == "ci"
    graphs = [seen["cuda_graphs"]]
    for flag in ("--cuda-graphs", "--no-cuda-graphs"):
        main(["reproduce", "--profile", "ci", "--out", str(tmp_path / "r"), "--quiet", flag])
        graphs.append(seen["cuda_graphs"])
    assert graphs == [None, True, False]


def test_cuda_graphs_reach_the_trainer_from_train_bench_and_reproduce(monkeypatch, tmp_path,
                                                                      capsys):
    """--cuda-graphs sets Trainer.cuda_graphs in `colorlab train` and `colorlab bench train`,
    and the profile's setting in `reproduce` (the runs then ask for graphs only on CUDA); where
    nothing was recorded (a CPU), train and bench say so."""
    import colorlab.train
    from colorlab.reproduce import reproduce

    asked = []
    real_fit, real_bench = colorlab.train.Trainer.fit, colorlab.train.Trainer.benchmark
    monkeypatch.setattr(colorlab.train.Trainer, "fit", lambda self, **kw: (
        asked.append(("fit", self.cuda_graphs)), real_fit(self, **kw))[1])
    monkeypatch.setattr(colorlab.train.Trainer, "benchmark", lambda self, **kw: (
        asked.append(("bench", self.cuda_graphs)), real_bench(self, **kw))[1])
    assert main(["train", "--dataset", "sample", "--loss", "ce", "--width", "0.0625", "--size",
                 "16", "--epochs", "1", "--batch-size", "4", "--run-dir", str(tmp_path / "t"),
                 "--device", "cpu", "--cuda-graphs"]) == 0
    assert "no CUDA graph was recorded" in capsys.readouterr().out
    assert main(["bench", "train", "--device", "cpu", "--size", "16", "--batch", "4", "--steps",
                 "1", "--repeats", "1", "--width", "0.0625", "--cuda-graphs"]) == 0
    assert "no CUDA graph was recorded" in capsys.readouterr().out
    prov = reproduce(tmp_path / "r", profile="ci", epochs=1, seeds=1, datasets=("fruits",),
                     work_dir=tmp_path / "w", classifier=None, progress=False,
                     cuda_graphs=True, log=lambda *a: None)
    # the CPU's runs train without asking: a graph needs CUDA; the call's record leaves it out
    assert asked[:2] == [("fit", True), ("bench", True)] and set(asked[2:]) == {("fit", False)}
    assert "cuda_graphs" not in prov["profile"]
    assert all(r["cuda_graph"] is False for r in prov["runs"].values())


def test_the_full_profile_is_not_compiled_unless_asked():
    from colorlab.reproduce import PROFILES

    assert not PROFILES["full"].compile and PROFILES["full"].bench_size == 176
