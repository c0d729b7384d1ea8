"""colorlab.pages: what the book's pages show instead of warnings, paths and typed numbers."""
import io
import warnings

import numpy as np
from PIL import Image as PILImage

from colorlab.data import load_images
from colorlab.pages import chapter_images, data_note, direction, web_image


def test_missing_data_falls_back_silently_and_says_so_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORLAB_DATA", str(tmp_path))  # an empty folder: no CelebA here
    monkeypatch.setenv("COLORLAB_PROFILE", "default")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning would reach the page
        faces = chapter_images("celeba", size=16)
    assert faces.source == "sample"
    note = data_note(faces)
    assert note.startswith("> **Sample images.**") and str(tmp_path) not in note
    # the library itself still warns a script user
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_images("celeba", size=16, root=tmp_path, sample_count=4)
    assert any("sample images" in str(w.message) for w in caught)


def test_data_note_names_real_datasets(tmp_path):
    class Real:
        source, name, size = "real", "celeba", 88

        def __len__(self):
            return 7200
    assert data_note(Real()) == ("> **Data.** This page computes on the real data: celeba "
                                 "(7,200 images at 88x88).")


def test_direction_follows_the_sign():
    assert [direction(v) for v in (1.0, -1.0, 0.0)] == ["rises", "falls", "stays"]
    assert direction(-0.2, "above", "below", tol=0.5) == "stays"


def test_web_image_keeps_small_pngs_and_shrinks_large_ones(tmp_path):
    rng = np.random.default_rng(0)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    PILImage.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(small)
    PILImage.fromarray(rng.integers(0, 255, (700, 700, 3), dtype=np.uint8)).save(large)
    assert web_image(small).format == "png" and web_image(small).data == small.read_bytes()
    assert large.stat().st_size > 500_000
    shrunk = web_image(large)
    assert shrunk.format == "jpeg" and len(shrunk.data) <= 500_000
    assert PILImage.open(io.BytesIO(shrunk.data)).size == (700, 700)


def test_glue_shows_its_value_where_no_page_renders_it(tmp_path, monkeypatch, capsys):
    """In Jupyter or Colab a glued number is printed and a glued figure displayed by its cell;
    while the book is built only the page shows them, where the prose puts them."""
    import IPython.display

    from colorlab import pages

    shown = []  # what the cell displays itself (MyST-NB's glue records pass keywords)
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, **kw: None if kw else shown.append(obj))
    PILImage.new("RGB", (4, 4), "red").save(tmp_path / "red.png")
    figure = web_image(tmp_path / "red.png")
    monkeypatch.delenv("COLORLAB_BOOK_BUILD", raising=False)
    pages.glue("share", 43.81234)
    pages.glue("panel", figure)
    assert capsys.readouterr().out == "share: 43.81\n" and shown == [figure]
    monkeypatch.setenv("COLORLAB_BOOK_BUILD", "1")
    pages.glue("share", 43.81234)
    pages.glue("panel", figure)
    assert capsys.readouterr().out == "" and shown == [figure]
