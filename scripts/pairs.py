#!/usr/bin/env python3
"""Write the book's chapters (``book/*.ipynb``) from their jupytext pairs (``book/src/*.py``,
percent format; the pairing is set in ``jupytext.toml``), or check that every pair agrees
(``--check``, run by the tests and the book build).

jupytext reads the sources: ``# %% [markdown]`` cells, cell metadata in the cell marker
(``tags=[...]``, and ``mystnb={"figure": ...}`` for a numbered figure that the text references
with {numref}), and the notebook metadata of the YAML header (``accelerator: GPU`` makes Colab
open a chapter that trains on a GPU). This script only fixes what jupytext leaves to chance, so
that a regenerated notebook is byte-identical: cell ids (``<chapter>-<index>``), no outputs.
In Jupyter with jupytext installed, saving a chapter updates its source too; run this script (or
``jupytext --sync book/src/*.py``) after editing a source elsewhere.

Every chapter's first cell installs colorlab in Colab from the repository of ``_config.yml``
(``repository.url``, the one place the URL is written); ``--check`` fails when a chapter's install
cell names another.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / "book" / "src", ROOT / "book"


def repository_url() -> str:
    """``repository.url`` of ``_config.yml``."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no repository.url")
    return match.group(1).strip("\"'")


def notebook_text(src: Path) -> str:
    """The notebook of ``src`` as jupytext reads it, with stable ids and no outputs."""
    nb = jupytext.read(src)
    nb.metadata.pop("jupytext", None)
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb) + "\n"


def problems(src: Path, url: str) -> list[str]:
    """What is wrong with the pair of ``src``: an out-of-date notebook, a wrong install cell."""
    found = []
    target = OUT / f"{src.stem}.ipynb"
    if not target.exists() or target.read_text() != notebook_text(src):
        found.append(f"{target.name} is out of date")
    first = jupytext.read(src).cells[0]
    if f"git+{url}" not in first.source or "remove-cell" not in first.metadata.get("tags", []):
        found.append(f"{src.name}: its first cell must install colorlab from git+{url} "
                     f"(tags=[\"remove-cell\"])")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a pair disagrees")
    args = parser.parse_args(argv)
    url, found = repository_url(), []
    for src in sorted(SRC.glob("*.py")):
        if args.check:
            found += problems(src, url)
        else:
            (OUT / f"{src.stem}.ipynb").write_text(notebook_text(src))
    if found:
        print("; ".join(found) + "; run: python scripts/pairs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
