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
cell names another. Its second cell, a Markdown note that the book's pages leave out and Colab
shows, links to the chapter's page (``html.baseurl``) and says how to read the MyST markup that
Colab leaves raw; ``--check`` fails when it is missing or differs from :func:`colab_note`.
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
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


def book_url() -> str:
    """``html.baseurl`` of ``_config.yml``: where the book is published."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^html:\s*\n(?:\s+.*\n)*?\s+baseurl:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no html.baseurl")
    return match.group(1).strip("\"'").rstrip("/") + "/"


def colab_note(stem: str, base: str) -> str:
    """The Markdown of a chapter's second cell, which the book's pages leave out
    (``remove-cell``) and Colab shows: where the chapter's page is, and how to read the MyST
    markup that Colab leaves raw."""
    text = (f"**Reading this in Colab or Jupyter?** This notebook is a chapter of the colorlab "
            f"book, and [its page]({base}book/{stem}.html) shows it with its figures, "
            f"cross-references and numbers in place. Colab and Jupyter do not render the book's "
            f"MyST markup: here a "
            f"cross-reference shows as a role in braces (`{{numref}}`, `{{eq}}`, `{{doc}}`), a "
            f"number that the page fills in from the computation as `{{glue:text}}` with the "
            f"number's name, and a figure as `{{glue:figure}}` with its name. Run the cells: "
            f"the cell that computes a number prints it as `name: value`, and the cell that "
            f"draws a figure shows it.")
    return textwrap.fill(text, 96, initial_indent="> ", subsequent_indent="> ",
                         break_long_words=False, break_on_hyphens=False)


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


def problems(src: Path, url: str, base: str | None = None) -> list[str]:
    """What is wrong with the pair of ``src``: an out-of-date notebook, a wrong install cell, a
    missing or outdated note for Colab readers (:func:`colab_note`, the second cell)."""
    found = []
    target = OUT / f"{src.stem}.ipynb"
    if not target.exists() or target.read_text() != notebook_text(src):
        found.append(f"{target.name} is out of date")
    first = jupytext.read(src).cells[0]
    if f"git+{url}" not in first.source or "remove-cell" not in first.metadata.get("tags", []):
        found.append(f"{src.name}: its first cell must install colorlab from git+{url} "
                     f"(tags=[\"remove-cell\"])")
    cells = jupytext.read(src).cells
    note = colab_note(src.stem, base or book_url())
    if len(cells) < 2 or cells[1].cell_type != "markdown" or cells[1].source != note or \
            "remove-cell" not in cells[1].metadata.get("tags", []):
        found.append(f"{src.name}: its second cell must be the note for Colab readers, a "
                     f"Markdown cell with tags=[\"remove-cell\"]: {note}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a pair disagrees")
    args = parser.parse_args(argv)
    url, base, found = repository_url(), book_url(), []
    for src in sorted(SRC.glob("*.py")):
        if args.check:
            found += problems(src, url, base)
        else:
            (OUT / f"{src.stem}.ipynb").write_text(notebook_text(src))
    if found:
        print("; ".join(found) + "; run: python scripts/pairs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
