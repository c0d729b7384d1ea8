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


def test_the_api_page_documents_every_public_name():
    """Each name in a module's ``__all__`` is in that module's ``:members:`` on the API page, or is
    the same object as a name documented under another module (a re-export, such as
    ``colorlab.train.TrainConfig`` from ``colorlab.config``)."""
    import importlib

    pages = re.findall(r"automodule:: colorlab\.(\w+)\n   :members: ([^\n]*)",
                       (ROOT / "book" / "api.md").read_text())
    listed = {mod: [name.strip() for name in members.split(",")] for mod, members in pages}
    modules = {mod: importlib.import_module(f"colorlab.{mod}") for mod in listed}
    documented = {id(getattr(modules[mod], name)) for mod, names in listed.items()
                  for name in names}
    missing = [f"colorlab.{mod}.{name}" for mod, module in modules.items()
               for name in getattr(module, "__all__", ())
               if name not in listed[mod] and id(getattr(module, name)) not in documented]
    assert not missing, f"not on book/api.md: {missing}"
    unknown = [f"colorlab.{mod}.{name}" for mod, names in listed.items() for name in names
               if not hasattr(modules[mod], name)]
    assert not unknown, f"book/api.md lists names that do not exist: {unknown}"
