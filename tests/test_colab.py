"""What a Colab reader gets: one chapter notebook alone in an empty folder, an empty HOME, colorlab
from the wheel (not this checkout), and the repository setting pointing at a local clone.

The wheel is built from this checkout and unpacked first on ``PYTHONPATH`` (the chapters' install
cell then finds colorlab and installs nothing). The notebooks run with nbclient in the default
profile, as in Colab. Offline: the "repository" is a local git repository (file://).
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_results_fetch import make_repo

from colorlab.results import recorded_results

REPO = Path(__file__).resolve().parent.parent
PROVENANCE = json.loads((REPO / "results" / "provenance.json").read_text())
COMMIT = recorded_results(REPO / "results").commit()  # of the code that made the results

RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
src, out, folder = sys.argv[1:]
nb = nbformat.read(src, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import colorlab; print('colorlab from', colorlab.__file__)"))
NotebookClient(nb, timeout=1200, kernel_name="python3",
               resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, out)
"""


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    """colorlab's wheel, built from a copy of the package sources and unpacked."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "colorlab", src / "colorlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("colorlab-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    assert not any(n.startswith("results/") for n in names)  # the wheel holds no results/
    return site


def run_alone(chapter: str, site: Path, tmp: Path, repository: str) -> tuple[str, str]:
    """Execute ``book/<chapter>.ipynb`` copied alone into an empty folder; returns the text of all
    its outputs and the folder colorlab was imported from."""
    folder, home = tmp / "colab", tmp / "home"
    folder.mkdir()
    home.mkdir()
    shutil.copy(REPO / "book" / f"{chapter}.ipynb", folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLORLAB_", "PYTHON"))}
    env.update(HOME=str(home), PYTHONPATH=str(site), COLORLAB_REPOSITORY=repository,
               MPLBACKEND="agg")
    out = tmp / "executed.ipynb"
    subprocess.run([sys.executable, "-c", RUNNER, str(folder / f"{chapter}.ipynb"), str(out),
                    str(folder)], check=True, env=env, cwd=folder, timeout=1500)
    texts = []
    for cell in json.loads(out.read_text())["cells"]:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            for kind in ("text/plain", "text/markdown"):
                texts.append("".join(output.get("data", {}).get(kind, "")))
    text = "\n".join(texts)
    imported = [ln for ln in text.splitlines() if ln.startswith("colorlab from ")][-1]
    return text, imported


@pytest.mark.parametrize("chapter", ["05_annealed_mean", "07_training", "08_evaluation"])
def test_a_chapter_alone_shows_the_recorded_run(chapter, wheel_site, tmp_path):
    commit = make_repo(tmp_path / "clone")
    text, imported = run_alone(chapter, wheel_site, tmp_path, f"file://{tmp_path / 'clone'}")
    assert imported.startswith(f"colorlab from {wheel_site}")  # the wheel, not this checkout
    assert PROVENANCE["device"] in text and COMMIT[:10] in text
    assert "stand-in" not in text and "CI-sized" not in text and "No recorded" not in text
    cache = tmp_path / "home" / ".cache" / "colorlab"
    (fetched,) = cache.glob("recorded-results-*/results/.fetched.json")
    assert json.loads(fetched.read_text())["commit"] == commit


def test_an_unreachable_source_is_said_in_one_line(wheel_site, tmp_path):
    text, imported = run_alone("05_annealed_mean", wheel_site, tmp_path,
                               f"file://{tmp_path / 'unreachable'}")
    assert imported.startswith(f"colorlab from {wheel_site}")
    notes = [ln for ln in text.splitlines() if "recorded results could not be fetched" in ln]
    assert len(notes) == 1 and "stand-in" in notes[0]
    assert "CI-sized run" in text  # the labelled fallback
    assert COMMIT[:10] not in text
    # nothing renders {glue:text} roles in Colab: each glued number is printed by its cell
    assert any(line.startswith("chroma-t1: ") for line in text.splitlines())
