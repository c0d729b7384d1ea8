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
