"""The library's own source as code: without its docstrings and comments, and hashed.

:func:`source_hash` names the code that computes results: ``results/`` records it, and a partial
reproduction (:class:`colorlab.results_folder.ResultsFolder`) is kept only while it matches, so
editing a comment or a docstring keeps finished GPU work and any change to the code discards it.
:func:`docstring_owners` also serves the book, which shows the library's functions without their
docstrings (:func:`colorlab.pages.show_source`, e.g. in ``book/03_ab_gamut.ipynb``).
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

__all__ = ["source_hash", "docstring_owners", "FRONT_ENDS"]


#: modules that only parse arguments or print: they cannot change what a reproduction computes
#: (``bench.py`` is hashed: the reproduction records ``colorlab bench train``)
FRONT_ENDS = ("__main__.py", "cli.py")


def docstring_owners(tree: ast.AST):
    """The module, class and function nodes of ``tree`` that open with a docstring (a string
    constant as their first statement), as ``(node, docstring_statement)`` pairs.

    >>> [type(n).__name__ for n, _ in docstring_owners(ast.parse('"M."\\ndef f():\\n    "F."'))]
    ['Module', 'FunctionDef']
    """
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            yield node, body[0]


def _code_only(source: str) -> str:
    """The code of a module without its comments, docstrings and layout: ``ast.dump`` of the
    parsed module with every docstring removed (comments and blank lines never reach the AST).

    >>> _code_only('def f():\\n    "Doc."\\n    return 1  # one') == _code_only("def f():\\n    return 1")
    True
    """
    tree = ast.parse(source)
    for node, _ in list(docstring_owners(tree)):
        node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def source_hash() -> str:
    """First 12 hex digits of the sha256 of the colorlab code that computes results.

    It covers ``colorlab/*.py`` except the command-line front ends (:data:`FRONT_ENDS`), as code
    only (:func:`_code_only`): editing a comment or a docstring keeps a partial reproduction, any
    change to the code discards it.

    >>> len(source_hash())
    12
    """
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if f.name not in FRONT_ENDS:
            h.update(f.name.encode() + b"\0" + _code_only(f.read_text()).encode() + b"\0")
    return h.hexdigest()[:12]
