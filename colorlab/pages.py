"""Helpers that put computed values on the book's pages (``book/*.ipynb``), so that no number or
trend in the prose is typed by hand and no build detail (a path, a warning) reaches a page.

* :func:`glue`: a value for the prose (MyST-NB ``{glue:text}``; a no-op where MyST-NB is absent,
  e.g. in Colab, where the reader sees the value in the code cell instead).
* :func:`direction`: the word for a change ("rises"/"falls", "above"/"below") computed from the
  data, for sentences whose direction depends on the run shown.
* :func:`chapter_images`: a chapter's data set, with the sample fallback stated once as prose by
  :func:`data_note` instead of a library warning in the output.
* :func:`web_image`: a photo panel re-encoded as JPEG under a size limit for the web page.
* :func:`show_source`: the library's own code of a function, for the chapter that derives it
  (the source itself, never a second copy).
* :func:`min_text_px`: the smallest text of a matplotlib figure, in CSS pixels, when the figure
  is shown in the book's 688 px text column (Chapter 9 and the figure test use it).
"""
from __future__ import annotations

import ast
import inspect
import io
import textwrap
import warnings
from pathlib import Path

from .source_code import docstring_owners

__all__ = ["glue", "direction", "chapter_images", "data_note", "web_image", "min_text_px",
           "live_kernel", "show_source", "source_markdown", "COLUMN_PX", "MIN_TEXT_PX"]

#: width of the book's text column in CSS pixels (sphinx-book-theme at a 1280 px window)
COLUMN_PX = 688
#: the smallest text a figure may hold at :data:`COLUMN_PX`, in CSS pixels
MIN_TEXT_PX = 9.0


def glue(name: str, value) -> None:
    """Store ``value`` for ``{glue:text}`name``` (or ``{glue:figure}``) in the chapter's Markdown
    (MyST-NB), and, in a live kernel (Jupyter, Colab: :func:`live_kernel`), where nothing renders
    those roles, also show it in the cell's output: a figure as itself, anything else as one
    ``name: value`` line, so that the reader sees every number and figure the prose refers to.

    >>> glue("bins-reached", 261)  # in a live kernel (a doctest is one)
    bins-reached: 261
    """
    try:
        from myst_nb import glue as nb_glue
    except ImportError:  # Colab or plain Jupyter: nothing renders the roles
        nb_glue = None
    if nb_glue is not None:
        nb_glue(name, value, display=False)
    if not live_kernel():  # the book's build: the page shows the value where the prose puts it
        return
    if any(hasattr(value, r) for r in ("_repr_png_", "_repr_jpeg_", "_repr_svg_", "savefig")):
        from IPython.display import display

        display(value)
    else:
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{name}: {shown}")


def direction(change: float, up: str = "rises", down: str = "falls", same: str = "stays",
              tol: float = 0.0) -> str:
    """The word for ``change`` (``up`` if > ``tol``, ``down`` if < ``-tol``, else ``same``).

    >>> direction(0.4), direction(-2.0, "above", "below"), direction(0.01, tol=0.05)
    ('rises', 'below', 'stays')
    """
    if change > tol:
        return up
    if change < -tol:
        return down
    return same


def chapter_images(name: str, size: int = 88):
    """:func:`colorlab.data.images_for_profile` without the library's fallback warning: a page
    states the fallback once, in prose, with :func:`data_note`.

    >>> chapter_images("fruits").source in ("real", "sample")
    True
    """
    from .data import images_for_profile

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Using the embedded sample images instead",
                                category=UserWarning)
        return images_for_profile(name, size=size)


def data_note(*datasets) -> str:
    """One Markdown sentence that says which images a chapter computes on.

    >>> from colorlab.data import sample_stand_in
    >>> data_note(sample_stand_in("celeba", 8, 2))[:40]
    '> **Sample images.** `COLORLAB_DATA` doe'
    """
    real = [ds for ds in datasets if ds.source == "real"]
    if len(real) == len(datasets):
        listed = " and ".join(f"{ds.name} ({len(ds):,} images at {ds.size}x{ds.size})"
                              for ds in datasets)
        return f"> **Data.** This page computes on the real data: {listed}."
    return ("> **Sample images.** `COLORLAB_DATA` does not point at the real CelebA and fruit "
            "images here, so this page computes on a few sample photographs that ship with "
            "scikit-image, scikit-learn and matplotlib, standing in for both data sets. The "
            "mechanics are the same; the numbers are not the report's.")


def web_image(path: str | Path, max_bytes: int = 500_000, quality: int = 88):
    """An ``IPython.display.Image`` of the picture at ``path`` for a web page: PNG when it is
    under ``max_bytes``, else JPEG at ``quality`` (lowered until it fits).

    >>> import numpy as np, tempfile
    >>> from PIL import Image as PILImage
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = Path(tmp) / "noise.png"
    ...     PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3),
    ...                                                         dtype=np.uint8)).save(f)
    ...     img = web_image(f, max_bytes=200_000)
    >>> img.format, len(img.data) <= 200_000
    ('jpeg', True)
    """
    from IPython.display import Image
    from PIL import Image as PILImage

    data = Path(path).read_bytes()
    if len(data) <= max_bytes:
        return Image(data=data, format="png")
    picture = PILImage.open(io.BytesIO(data)).convert("RGB")
    while True:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= max_bytes or quality <= 40:
            return Image(data=buffer.getvalue(), format="jpeg")
        quality -= 8


def min_text_px(fig, column_px: int = COLUMN_PX, dpi: float | None = None) -> float:
    """The smallest visible text of ``fig`` in CSS pixels when shown ``column_px`` wide.

    A figure saved at ``dpi`` is ``width_in * dpi`` pixels wide; a page shows it at that width,
    or shrunk to the column when it is wider (never enlarged). A font of ``s`` points is then
    ``s / 72 * dpi * min(1, column_px / (width_in * dpi))`` pixels, i.e.
    ``s / 72 * min(dpi, column_px / width_in)``. ``dpi`` defaults to ``fig.dpi``.

    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(11, 4), dpi=100)
    >>> _ = fig.text(0.5, 0.5, "x", fontsize=10)
    >>> round(min_text_px(fig), 2)  # 10 pt * 688 px / (11 in * 72 pt/in)
    8.69
    """
    from matplotlib.text import Text

    dpi = dpi or fig.dpi
    px_per_pt = min(dpi, column_px / fig.get_figwidth()) / 72
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and _on_figure(t)]
    return float(min(sizes) * px_per_pt) if sizes else float("inf")


def _on_figure(text) -> bool:
    """Whether a text artist is drawn (its axes, if any, is visible)."""
    ax = text.axes
    return ax is None or (ax.get_visible() and ax.axison) or text in (
        ax.title, ax._left_title, ax._right_title) or text in ax.texts


def live_kernel() -> bool:
    """False while the book is being built (``scripts/build-book.sh`` sets
    ``COLORLAB_BOOK_BUILD=1``): interactive widgets are skipped there, since a static page cannot
    run them and their saved state would only add weight to the page.

    >>> isinstance(live_kernel(), bool)
    True
    """
    import os

    return os.environ.get("COLORLAB_BOOK_BUILD") != "1"


def source_markdown(*objects, docstrings: bool = False) -> str:
    """The source of each function, method or class in ``objects`` as one fenced Python block,
    read from the installed library with :func:`inspect.getsource` (so a page shows the code
    that runs, never a copy), each headed by a comment that names it. Docstrings are left out
    unless ``docstrings`` (the chapter around the code derives what they say).

    >>> from colorlab.decode import mean
    >>> print(source_markdown(mean))
    ```python
    # colorlab.decode.mean
    def mean(logits: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
        bins = _check_logits(logits, bins)
        return _expectation(torch.softmax(logits, dim=1), bins)
    ```
    """
    parts = []
    for obj in objects:
        source = textwrap.dedent(inspect.getsource(obj))
        if not docstrings:
            source = _without_docstrings(source)
        name = f"{obj.__module__}.{obj.__qualname__}"
        parts.append(f"# {name}\n{source.rstrip()}")
    return "```python\n" + "\n\n".join(parts) + "\n```"


def _without_docstrings(source: str) -> str:
    """``source`` without the docstring lines of its functions and classes (line-exact, so the
    rest stays as written, comments included)."""
    drop: set[int] = set()
    for _, doc in docstring_owners(ast.parse(source)):
        drop.update(range(doc.lineno, doc.end_lineno + 1))
    lines = source.splitlines()
    return "\n".join(line for i, line in enumerate(lines, start=1) if i not in drop)


def show_source(*objects, docstrings: bool = False) -> None:
    """Display :func:`source_markdown` of ``objects`` in a notebook (a highlighted code block on
    the book's page and in Colab)."""
    from IPython.display import Markdown, display

    display(Markdown(source_markdown(*objects, docstrings=docstrings)))
