"""Datasets: robust decoding, deterministic splits, the sample set, the real folders."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from colorlab.data import CelebA, Fruits10, ImageFolder, SampleImages, load_images, split_names
from colorlab.images import UnreadableImage, fit_square, read_rgb


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setenv("COLORLAB_CACHE", "off")


@pytest.fixture
def odd_folder(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(rgb).save(tmp_path / "a" / "rgb.jpg")
    Image.fromarray(rgb).convert("P").save(tmp_path / "a" / "palette.png")
    p = Image.fromarray(rgb).convert("P")
    p.info["transparency"] = 0
    p.save(tmp_path / "a" / "palette_t.png", transparency=0)
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 128, np.uint8)])).save(tmp_path / "b" / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b" / "gray.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "b" / "cmyk.jpg")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(tmp_path / "b" / "gray16.png")
    good = (tmp_path / "a" / "rgb.jpg").read_bytes()
    (tmp_path / "b" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "b" / "notes.png").write_text("not an image")
    return tmp_path


def test_every_mode_becomes_rgb_and_bad_files_are_counted(odd_folder):
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        ds = ImageFolder(odd_folder, size=16, class_subfolders=True)
    assert len(ds) == 7 and len(ds.skipped) == 2
    assert ds.images.shape == (7, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.classes == ["a", "b"]
    assert sorted(ds.labels.tolist()) == [0, 0, 0, 1, 1, 1, 1]
    assert "skipped 2 unreadable" in ds.summary()
    img, label = ds[0]
    assert img.shape == (3, 16, 16) and label == 0


def test_gray16_is_rescaled_to_8_bit(odd_folder):
    img = read_rgb(odd_folder / "b" / "gray16.png")
    ref = np.asarray(Image.open(odd_folder / "b" / "gray.png"))
    assert np.abs(img[0].numpy().astype(int) - ref.astype(int)).max() <= 1


def test_rgba_is_composited_on_white(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (read_rgb(tmp_path / "clear.png") == 255).all()


def test_strict_mode_raises(odd_folder):
    with pytest.raises(UnreadableImage, match="not a readable image"):
        ImageFolder(odd_folder, size=16, strict=True)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolder(tmp_path)


def test_cache_round_trip(odd_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORLAB_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = ImageFolder(odd_folder, size=16)
        second = ImageFolder(odd_folder, size=16)
    assert torch.equal(first.images, second.images) and first.files == second.files
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_the_cache_keeps_classes_and_strict_mode(odd_folder, tmp_path, monkeypatch):
    """One cached decoding serves a folder read with and without class folders (labels come from
    the names), and strict mode still refuses the unreadable files the cache remembers."""
    monkeypatch.setenv("COLORLAB_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = ImageFolder(odd_folder, size=16)  # fills the cache
        classes = ImageFolder(odd_folder, size=16, class_subfolders=True)
    assert set(plain.labels.tolist()) == {-1}
    assert classes.classes == ["a", "b"]
    assert classes.labels.tolist() == [0 if f.startswith("a/") else 1 for f in classes.files]
    with pytest.raises(UnreadableImage, match="not a readable image"):
        ImageFolder(odd_folder, size=16, strict=True)


@pytest.mark.parametrize("limit, error", [(0, "limit must be a positive integer, got 0"),
                                          (-1, "got -1"), ("3", "got '3'")])
def test_a_bad_limit_is_refused(odd_folder, limit, error):
    with pytest.raises(ValueError, match=error):
        ImageFolder(odd_folder, size=16, limit=limit)


def test_a_file_is_not_an_image_folder(odd_folder):
    with pytest.raises(NotADirectoryError, match="rgb.jpg is a file; pass the folder"):
        ImageFolder(odd_folder / "a" / "rgb.jpg", size=16)


def test_fit_square():
    img = torch.zeros(3, 10, 20, dtype=torch.uint8)
    img[:, :, 5:15] = 255
    assert (fit_square(img, 10, "crop") == 255).all()  # the central square is all white
    assert fit_square(img, 10, "squash").float().mean() < 255
    with pytest.raises(ValueError, match="fit"):
        fit_square(img, 10, "stretch")


def test_split_is_deterministic_and_independent_of_order():
    names = [f"{i:06d}.jpg" for i in range(1, 7201)]
    a = split_names(names)
    b = split_names(list(reversed(names)))
    assert a == b
    assert [len(a[k]) for k in ("train", "val", "test")] == [4320, 1440, 1440]
    assert not set(a["train"]) & set(a["test"])
    assert split_names(names, seed=1) != a
    # adding files elsewhere does not move the existing ones between train and test
    c = split_names(names + ["zzz.jpg"])
    moved = set(a["train"]) & set(c["test"])
    assert len(moved) < 20


def test_sample_images_are_seeded():
    a, b = SampleImages(size=24, n=10, seed=3), SampleImages(size=24, n=10, seed=3)
    assert torch.equal(a.images, b.images) and a.files == b.files
    assert not torch.equal(a.images, SampleImages(size=24, n=10, seed=4).images)
    assert a.source == "sample" and "not the real dataset" in a.summary()


def test_load_images_falls_back_visibly(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORLAB_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="sample images instead"):
        ds = load_images("celeba", size=16, sample_count=8)
    assert ds.source == "sample" and len(ds) == 8
    with pytest.raises(FileNotFoundError, match="CelebA not found"):
        load_images("celeba", size=16, fallback=False)
    with pytest.raises(FileNotFoundError, match="fruits-10 not found"):
        Fruits10(tmp_path)
    with pytest.raises(ValueError, match="dataset must be"):
        load_images("imagenet")


def test_celeba_download_failure_says_where_to_put_files(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("quota exceeded")

    monkeypatch.setattr(torchvision.datasets, "CelebA", Offline)
    with pytest.raises(RuntimeError, match="img_align_celeba"):
        CelebA(tmp_path, size=16, download=True)


def test_manifest_records_split_and_hash():
    ds = SampleImages(size=16, n=20)
    m = ds.manifest()
    assert m["size"] == 16 and len(m["splits"]["train"]) == 12 and len(m["hash"]) == 64
    assert m == ds.manifest()


def test_real_datasets(shared_data):
    celeba = CelebA(shared_data, size=16, subset=50)
    assert len(celeba) == 50 and celeba.files[0] == "000001.jpg"
    fruits = Fruits10(shared_data, size=16, limit=40)
    assert len(fruits) == 40 and len(fruits.classes) >= 1


def test_image_folder_is_still_importable_from_where_it_was():
    from colorlab.images import ImageFolder as old_name

    assert old_name is ImageFolder
