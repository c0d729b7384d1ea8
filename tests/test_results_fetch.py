"""colorlab.results_fetch and the chapters' fallback (colorlab.results) against local git
repositories (file://), offline."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import colorlab.results
import colorlab.results_fetch as fetching
from colorlab.cli import main
from colorlab.results import fetched_recorded_results, recorded_results

REPO = Path(__file__).resolve().parent.parent


def make_repo(path: Path, with_results: bool = True) -> str:
    """A git repository (branch main, one commit) holding a copy of the recorded results/."""
    path.mkdir(parents=True)
    if with_results:
        shutil.copytree(REPO / "results", path / "results")
    else:
        (path / "README.md").write_text("no results here\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
           "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "results"]):
        subprocess.run(git + args, cwd=path, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_defaults_are_the_books_repository_setting():
    config = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    assert (fetching.REPOSITORY, fetching.BRANCH) == (config["url"], config["branch"])


def test_fetch_from_a_local_clone_then_reuse_offline(tmp_path):
    commit = make_repo(tmp_path / "origin")
    dest = tmp_path / "cache" / "results"
    got = fetching.fetch_results(dest, f"file://{tmp_path / 'origin'}", "main")
    assert got == dest
    origin = json.loads((dest / fetching.FETCHED).read_text())
    assert origin["commit"] == commit and origin["ref"] == "main"
    assert (dest / "provenance.json").read_bytes() == (REPO / "results" /
                                                        "provenance.json").read_bytes()
    found = recorded_results(dest)
    assert found is not None and found.recorded
    shutil.rmtree(tmp_path / "origin")  # the source is gone: the cached copy serves
    assert fetching.fetch_results(dest, f"file://{tmp_path / 'origin'}", "main") == dest
    assert [p.name for p in dest.parent.iterdir()] == ["results"]  # no temporary folder left


def test_failures_are_one_line_and_leave_nothing(tmp_path):
    dest = tmp_path / "cache" / "results"
    with pytest.raises(fetching.FetchError, match="could not fetch main of file://") as err:
        fetching.fetch_results(dest, f"file://{tmp_path / 'missing'}", "main")
    assert "\n" not in str(err.value)
    # git's reason, not its closing advice ("... and the repository exists.")
    assert "does not appear to be a git repository" in str(err.value)
    assert "repository exists" not in str(err.value)
    make_repo(tmp_path / "empty", with_results=False)
    with pytest.raises(fetching.FetchError, match="has no results/ folder"):
        fetching.fetch_results(dest, f"file://{tmp_path / 'empty'}", "main")
    with pytest.raises(fetching.FetchError, match="could not fetch nope"):
        fetching.fetch_results(dest, f"file://{tmp_path / 'empty'}", "nope")
    assert list(dest.parent.iterdir()) == []


def test_chapters_outside_a_checkout_fetch_or_say_why(tmp_path, monkeypatch):
    make_repo(tmp_path / "origin")
    monkeypatch.setattr(colorlab.results, "checkout_root", lambda: None)  # as if installed from the wheel
    monkeypatch.delenv("COLORLAB_RESULTS", raising=False)
    monkeypatch.setenv("COLORLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLORLAB_REF", "main")
    lines = []
    monkeypatch.setenv("COLORLAB_REPOSITORY", f"file://{tmp_path / 'origin'}")
    fetched_recorded_results.cache_clear()
    found = fetched_recorded_results(lines.append)
    assert found is not None and found.recorded and lines == []
    prov = json.loads((REPO / "results" / "provenance.json").read_text())
    commit = recorded_results(REPO / "results").commit()
    assert commit[:10] in found.label and prov["device"] in found.label
    monkeypatch.setenv("COLORLAB_REPOSITORY", f"file://{tmp_path / 'nowhere'}")
    fetched_recorded_results.cache_clear()
    assert fetched_recorded_results(lines.append) is None
    assert len(lines) == 1 and lines[0].startswith("Note: the recorded results could not be "
                                                   "fetched") and "stand-in" in lines[0]
    fetched_recorded_results.cache_clear()


def test_in_a_checkout_nothing_is_fetched(monkeypatch):
    monkeypatch.setenv("COLORLAB_REPOSITORY", "file:///nowhere")
    fetched_recorded_results.cache_clear()
    assert fetched_recorded_results(lambda line: pytest.fail(line)) is None
    fetched_recorded_results.cache_clear()


def test_results_fetch_command(tmp_path, capsys):
    commit = make_repo(tmp_path / "origin")
    out = tmp_path / "here"
    assert main(["results", "fetch", "--repository", f"file://{tmp_path / 'origin'}", "--ref",
                 "main", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert commit[:10] in text and "Recorded GPU run" in text and f"COLORLAB_RESULTS={out}" in text
    assert main(["results", "fetch", "--repository", f"file://{tmp_path / 'x'}", "--ref", "main",
                 "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("colorlab: error: could not fetch main") and err.count("\n") == 1


def test_a_fetch_never_replaces_a_folder_it_did_not_fetch(tmp_path, capsys):
    """A fetch replaces its folder as a whole: a reader's own files, or a recorded run, are
    refused before anything is fetched, and stay as they were (a refresh of an earlier fetch and
    an empty folder are fine)."""
    make_repo(tmp_path / "origin")
    url = f"file://{tmp_path / 'origin'}"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("my own work")
    assert main(["results", "fetch", "--repository", url, "--ref", "main", "--out",
                 str(mine), "--refresh"]) == 2
    err = capsys.readouterr().err
    assert "did not fetch (e.g. thesis.txt)" in err and err.count("\n") == 1
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]
    recorded = tmp_path / "results"
    shutil.copytree(REPO / "results", recorded)
    with pytest.raises(fetching.FetchError, match="did not fetch"):
        fetching.fetch_results(recorded, url, "main")
    assert not (recorded / fetching.FETCHED).exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(fetching.FetchError, match="is a file"):
        fetching.fetch_results(tmp_path / "afile", url, "main")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fetching.fetch_results(empty, url, "main") == empty
    assert fetching.fetch_results(empty, url, "main", refresh=True) == empty  # an earlier fetch
    assert (empty / "provenance.json").is_file()
