"""The colorlab console script: --version, info, bench, and clean errors."""
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


def test_bench_core_prints_ratios(capsys):
    from colorlab.bench import main as bench

    assert bench(["core", "--batch", "2", "--size", "32", "--repeats", "1"]) == 0
    text = capsys.readouterr().out
    assert "rgb_to_lab" in text and "soft_encode" in text and "x faster" in text


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


def test_the_full_profile_is_not_compiled_unless_asked():
    from colorlab.reproduce import PROFILES

    assert not PROFILES["full"].compile and PROFILES["full"].bench_size == 176
