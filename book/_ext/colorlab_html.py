"""Sphinx extension of the colorlab book (registered in ``_config.yml``, ``local_extensions``):
chapter links in the API reference, and two fixes for console errors that every reader's browser
would log (found by ``tests/pages_in_browser.py``).

* A docstring that names a chapter (````book/07_training.ipynb````) links to it on the API page.

* The Jupyter Book stack adds sphinx-thebe's inline configuration script twice to every page;
  the second copy fails with "Identifier 'THEBE_JS_URL' has already been declared". Each page
  keeps one copy of every script.
* pydata-sphinx-theme logs "Got invalid theme mode" on a reader's first visit when no
  ``default_mode`` is set; it is set to ``auto`` (follow the reader's system), what the theme
  falls back to anyway (pydata-sphinx-theme reads it from ``html_context``).
"""
from __future__ import annotations

import re

#: a chapter named in a docstring, as the library writes it: ``book/07_training.ipynb``
_CHAPTER = re.compile(r"``(book/\d\d_[a-z0-9_]+)\.ipynb``")


def _chapter_links(app, what, name, obj, options, lines) -> None:
    """Turn each chapter a docstring names into a link on the API page (the docstrings stay
    plain text for ``help()``)."""
    for i, line in enumerate(lines):
        lines[i] = _CHAPTER.sub(lambda m: f":doc:`{m.group(1)}.ipynb </{m.group(1)}>`", line)


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same file or inline body (an inline script's filename is None or ""), whatever
        # priority each copy was added with
        key = (getattr(script, "filename", str(script)) or None,
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def _default_mode(app, config) -> None:
    context = dict(config.html_context or {})  # pydata-sphinx-theme reads it from the context
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("autodoc-process-docstring", _chapter_links)
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
