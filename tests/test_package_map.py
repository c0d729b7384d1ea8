"""The map of the package (issue 13): every public module is listed, by role, in the
``colorlab/__init__`` docstring, the README and the book's API page, and every chapter a
docstring names exists (the API page turns those names into links)."""
import re
from pathlib import Path

import pytest

import colorlab

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "colorlab").glob("*.py")
                 if not p.stem.startswith("_"))


def _readme_map() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## The package"):text.index("## Command line")]


@pytest.mark.parametrize("where, text, pattern", [
    ("colorlab/__init__.py", colorlab.__doc__, r":mod:`colorlab\.(\w+)`"),
    ("README.md", _readme_map(), r"`colorlab\.(\w+)`"),
    ("book/api.md", (ROOT / "book" / "api.md").read_text(), r"automodule:: colorlab\.(\w+)"),
])
def test_every_public_module_is_on_the_map(where, text, pattern):
    listed = re.findall(pattern, text)
    assert sorted(set(listed)) == MODULES, where
    assert len(listed) == len(set(listed)), f"{where} lists a module twice"


def test_the_three_maps_group_the_modules_alike():
    order = re.findall(r":mod:`colorlab\.(\w+)`", colorlab.__doc__)
    assert re.findall(r"`colorlab\.(\w+)`", _readme_map()) == order
    assert re.findall(r"automodule:: colorlab\.(\w+)",
                      (ROOT / "book" / "api.md").read_text()) == order


def test_every_chapter_a_docstring_names_exists():
    named = set()
    for path in (ROOT / "colorlab").glob("*.py"):
        named |= set(re.findall(r"``(book/\d\d_[a-z0-9_]+\.ipynb)``", path.read_text()))
    assert named, "the docstrings name their chapters"
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert not missing, missing
