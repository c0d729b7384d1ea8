"""The book's sources: notebooks paired with book/src by jupytext and in sync, stripped, listed,
one repository URL."""
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import pairs  # noqa: E402

CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))


def test_there_are_nine_chapters():
    assert [p.stem[:2] for p in CHAPTERS] == [f"{i:02d}" for i in range(1, 10)]


def test_notebooks_are_in_sync_with_their_sources():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "pairs.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_pairs_are_jupytexts(tmp_path):
    """jupytext itself pairs the two folders (jupytext.toml), and reads each source into the
    cells of its notebook: what Jupyter with jupytext saves is what the check expects."""
    import jupytext
    from jupytext.config import load_jupytext_configuration_file
    from jupytext.paired_paths import paired_paths

    (formats,) = load_jupytext_configuration_file(str(REPO / "jupytext.toml")).formats
    for path in CHAPTERS:
        pair = [p for p, _ in paired_paths(f"book/{path.name}", "ipynb", formats)]
        assert pair == [f"book/{path.name}", f"book/src/{path.stem}.py"]
        nb = jupytext.read(REPO / "book" / "src" / f"{path.stem}.py")
        committed = json.loads(path.read_text())
        assert [c.source for c in nb.cells] == ["".join(c["source"])
                                                for c in committed["cells"]], path.name


def test_a_stale_notebook_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs, "SRC", tmp_path / "src")
    monkeypatch.setattr(pairs, "OUT", tmp_path)
    (tmp_path / "src").mkdir()
    source = (REPO / "book" / "src" / "01_introduction.py").read_text()
    (tmp_path / "src" / "01_introduction.py").write_text(source)
    assert pairs.main([]) == 0 and pairs.main(["--check"]) == 0
    (tmp_path / "src" / "01_introduction.py").write_text(source + "\n# %%\nprint(1)\n")
    assert pairs.main(["--check"]) == 1


def test_notebooks_are_committed_without_outputs():
    for path in CHAPTERS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_every_chapter_starts_with_the_install_cell():
    url = pairs.repository_url()
    for path in CHAPTERS:
        first = json.loads(path.read_text())["cells"][0]
        source = "".join(first["source"])
        assert f"git+{url}" in source and "find_spec(\"colorlab\") is None" in source, path.name


def test_every_chapter_tells_a_colab_reader_where_its_page_is():
    """Colab opens a chapter's notebook and leaves its MyST markup raw: the second cell (left out
    of the book's pages) links to the chapter's published page and says how to read the roles."""
    base = pairs.book_url()
    for path in CHAPTERS:
        second = json.loads(path.read_text())["cells"][1]
        source = "".join(second["source"])
        assert second["cell_type"] == "markdown" and "remove-cell" in second["metadata"]["tags"]
        assert f"({base}book/{path.stem}.html)" in source and "{glue:text}" in source, path.name


def test_the_book_is_published_where_the_repository_publishes_its_pages():
    """``html.baseurl`` is the GitHub Pages address of ``repository.url`` (the workflow deploys
    the book there), so the Colab notes link to real pages."""
    org, repo = pairs.repository_url().removeprefix("https://github.com/").split("/")
    assert pairs.book_url() == f"https://{org}.github.io/{repo}/"


def test_a_missing_colab_note_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs, "SRC", tmp_path / "src")
    monkeypatch.setattr(pairs, "OUT", tmp_path)
    (tmp_path / "src").mkdir()
    source = (REPO / "book" / "src" / "02_lab_colour.py").read_text()
    cells = source.split("# %% [markdown]")
    without = cells[0] + "# %% [markdown]" + "# %% [markdown]".join(cells[2:])
    (tmp_path / "src" / "02_lab_colour.py").write_text(without)
    assert pairs.main([]) == 0 and pairs.main(["--check"]) == 1


def test_repository_url_is_one_setting():
    url = pairs.repository_url()
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["repository"]["url"] == url
    found = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", (REPO / "README.md").read_text()))
    assert found == {url}


def test_toc_lists_every_chapter_and_the_reference_pages():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files[:9] == [f"book/{p.stem}" for p in CHAPTERS]
    assert "book/api" in files and "book/bibliography" in files


def test_cited_keys_exist_in_the_bibliography():
    bib = (REPO / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([\w-]+),", bib))
    cited = set()
    for path in list((REPO / "book").glob("src/*.py")) + list((REPO / "book").glob("*.md")):
        for group in re.findall(r"\{cite\}`([^`]+)`", path.read_text()):
            cited.update(k.strip() for k in group.split(","))
    assert cited and cited <= keys, cited - keys


def test_figures_referenced_exist():
    text = "\n".join(p.read_text() for p in (REPO / "book" / "src").glob("*.py"))
    defined = set(re.findall(r'"name": "([\w-]+)"|:name: ([\w-]+)', text))
    defined = {name for pair in defined for name in pair if name}
    referenced = set(re.findall(r"\{numref\}`([\w-]+)`", text))
    assert referenced <= defined, referenced - defined


def test_only_chapters_that_train_ask_colab_for_a_gpu():
    """Colab's GPU runtime is scarce: a chapter that does not train opens on a CPU runtime."""
    gpu = {p.stem for p in CHAPTERS if json.loads(p.read_text())["metadata"].get("accelerator")}
    trains = {p.stem for p in (REPO / "book" / "src").glob("*.py")
              if "reproduce(" in p.read_text() or "Trainer(" in p.read_text()}
    assert gpu == trains == {"07_training"}
