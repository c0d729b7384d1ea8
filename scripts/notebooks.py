#!/usr/bin/env python3
"""Build the book's chapters (``book/*.ipynb``) from their percent-format sources
(``book/src/*.py``), or check that they are in sync (``--check``, run by the tests).

Source format: cells start with ``# %%`` (code) or ``# %% [markdown]`` (Markdown, every line
prefixed by ``# ``); ``# %% tags=["remove-cell"]`` adds cell tags, and
``# %% [figure fig-name] Caption`` makes the cell's image a numbered figure (MyST-NB metadata)
that the text can reference with {numref}`fig-name`, with the caption as the image's alt text.
Every chapter gets, as its first cell, the Colab install cell, built from the single repository
setting in ``_config.yml`` (``repository.url``). Outside a checkout the chapters fetch the
recorded ``results/`` of the installed commit themselves (:mod:`colorlab.fetch_results`). A
source whose first line is ``# colab: gpu`` (a chapter that trains) asks Colab for a GPU runtime;
the others run on a CPU runtime. Notebooks are written without outputs.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / "book" / "src", ROOT / "book"
GPU_MARK = "# colab: gpu\n"  #: first line of a chapter that trains: Colab opens it on a GPU
HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*?\]))?"
                    r"(?: \[figure (?P<fig>[\w-]+)\] (?P<caption>.+))?\s*$")


def repository_url() -> str:
    """``repository.url`` of ``_config.yml`` (the one place the URL is written)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no repository.url")
    return match.group(1).strip("\"'")


def install_cell(url: str) -> dict:
    source = (
        "# Colab: install colorlab from the repository when it is missing (a no-op locally and in CI).\n"
        "import importlib.util, subprocess, sys\n"
        "if importlib.util.find_spec(\"colorlab\") is None:\n"
        f"    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f"                           \"colorlab @ git+{url}\"])"
    )
    return _cell("code", source, ["remove-cell"])


def _cell(kind: str, source: str, tags: list[str] | None = None,
          figure: dict | None = None) -> dict:
    metadata: dict = {"tags": tags} if tags else {}
    if figure:
        metadata["mystnb"] = {"figure": figure, "image": {"alt": figure["caption"]}}
    cell = {"cell_type": kind, "metadata": metadata, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def parse(text: str) -> list[dict]:
    cells, kind, tags, figure, lines = [], None, None, None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.splitlines())
        if body.strip():
            cells.append(_cell(kind, body, tags, figure))

    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else None
            figure = {"name": m.group("fig"), "caption": m.group("caption")} if m.group("fig") \
                else None
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def notebook(src: Path, url: str) -> str:
    text = src.read_text()
    nb = {"cells": [install_cell(url)] + parse(text),
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"},
                       "language_info": {"name": "python"},
                       "colab": {"provenance": []}},
          "nbformat": 4, "nbformat_minor": 5}
    if text.startswith(GPU_MARK):
        nb["metadata"]["accelerator"] = "GPU"
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a notebook is out of date")
    args = parser.parse_args(argv)
    url, stale = repository_url(), []
    for src in sorted(SRC.glob("*.py")):
        target = OUT / f"{src.stem}.ipynb"
        text = notebook(src, url)
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run: python scripts/notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
