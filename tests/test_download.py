"""colorlab.download offline: tiny archives built here, served from 127.0.0.1 or file://."""
import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from colorlab.cli import main
from colorlab.download import (DownloadError, download_celeba, download_fruits, fetch,
                               fruits_manifest)

REPO = Path(__file__).resolve().parent.parent


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; honours Range; ``truncate`` > 0 sends only that many bytes of a body
    while announcing the full length (a connection cut midway)."""

    files: dict = {}
    truncate = 0
    ranges: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        data = self.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        header = self.headers.get("Range")
        self.ranges.append(header)
        if header:
            start, status = int(header.split("=")[1].rstrip("-")), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self.wfile.write(body[:self.truncate] if self.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.files, Handler.truncate, Handler.ranges = {}, 0, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    httpd.shutdown()
    httpd.server_close()


def fruit_archive() -> tuple[bytes, dict]:
    """A zip laid out like the fruit repository, and its expected manifest (computed here)."""
    files = {"data/train/strawberries/a.jpeg": b"red" * 1000,
             "data/train/strawberries/b.jpeg": b"red" * 1000,  # a duplicate: dropped
             "data/test/pinenapple/c.jpeg": b"yellow" * 2000,
             "data/test/apple/d.jpeg": b"green" * 3000,
             "data/train/apple/e.jpeg": b"red" * 1000,  # same bytes, other class: kept
             "README.md": b"not an image"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"Fruit-classification-abc/{name}", data)
    expected = {}
    for name, cls in (("data/train/strawberries/a.jpeg", "strawberry"),
                      ("data/test/pinenapple/c.jpeg", "pineapple"),
                      ("data/test/apple/d.jpeg", "apple"), ("data/train/apple/e.jpeg", "apple")):
        digest = hashlib.sha256(files[name]).hexdigest()
        expected[f"{cls}/{digest[:12]}.jpeg"] = digest
    return buf.getvalue(), expected


def folder_digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def test_the_manifest_holds_the_recorded_runs_file_names():
    recorded = json.loads((REPO / "results" / "fruits" / "manifest.json").read_text())
    names = {n for split in recorded["splits"].values() for n in split}
    assert set(fruits_manifest()) == names and len(names) == recorded["read"] == 3199


def test_fruits_from_a_local_server(server, tmp_path):
    base, handler = server
    handler.files["fruits.zip"], expected = fruit_archive()
    folder = download_fruits(tmp_path, f"{base}/fruits.zip", expected, progress=False)
    assert folder == tmp_path / "fruits-10" and folder_digests(folder) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [".downloads", "fruits-10"]
    assert not any((tmp_path / ".downloads").iterdir())  # the archive is not kept
    handler.files.clear()  # a second call checks the folder and downloads nothing
    assert download_fruits(tmp_path, f"{base}/fruits.zip", expected, progress=False) == folder


def test_a_checksum_mismatch_writes_nothing(server, tmp_path):
    base, handler = server
    handler.files["fruits.zip"], expected = fruit_archive()
    name = next(iter(expected))
    expected[name] = "0" * 64
    with pytest.raises(DownloadError, match="1 with another sha256.*nothing was written"):
        download_fruits(tmp_path, f"{base}/fruits.zip", expected, progress=False)
    assert not (tmp_path / "fruits-10").exists() and not (tmp_path / ".fruits-10.partial").exists()
    assert not any((tmp_path / ".downloads").iterdir())  # the bad archive is not reused
    with pytest.raises(DownloadError, match="sha256 .* expected .*deleted"):
        fetch(f"{base}/fruits.zip", tmp_path / "x.zip", sha256="1" * 64, progress=False)
    assert not list(tmp_path.glob("x.zip*"))


def test_a_truncated_download_resumes(server, tmp_path):
    base, handler = server
    archive, expected = fruit_archive()
    handler.files["fruits.zip"], handler.truncate = archive, 5000
    with pytest.raises(DownloadError, match="run the same command again: it resumes"):
        download_fruits(tmp_path, f"{base}/fruits.zip", expected, progress=False)
    assert not (tmp_path / "fruits-10").exists() and not (tmp_path / ".fruits-10.partial").exists()
    (part,) = (tmp_path / ".downloads").glob("*.part")
    assert part.read_bytes() == archive[:5000]
    handler.truncate = 0  # the connection is back
    folder = download_fruits(tmp_path, f"{base}/fruits.zip", expected, progress=False)
    assert handler.ranges == [None, "bytes=5000-"]  # the second request asked for the rest only
    assert folder_digests(folder) == expected


def test_file_sources_resume_too(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 100)
    dest = tmp_path / "d" / "out.bin"
    dest.parent.mkdir()
    dest.with_name("out.bin.part").write_bytes(src.read_bytes()[:1000])  # an interrupted call
    fetch(src.as_uri(), dest, sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
          progress=False)
    assert dest.read_bytes() == src.read_bytes() and not dest.with_name("out.bin.part").exists()


def test_unreachable_sources_say_what_to_do(tmp_path, capsys):
    with pytest.raises(DownloadError, match="check the connection"):
        download_fruits(tmp_path, "http://127.0.0.1:9/none.zip", {}, progress=False)
    assert main(["data", "download", "fruits", "--root", str(tmp_path), "--quiet", "--source",
                 (tmp_path / "missing.zip").as_uri()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("colorlab: error: could not download") and err.count("\n") == 1
    assert not (tmp_path / "fruits-10").exists()


def celeba_archive(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(1, n + 1):
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", f"face {i}".encode())
    return buf.getvalue()


def test_celeba_subset_from_a_mirror(server, tmp_path):
    base, handler = server
    handler.files["celeba.zip"] = celeba_archive(5)
    folder = download_celeba(tmp_path, f"{base}/celeba.zip", count=3, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert (folder / "000002.jpg").read_bytes() == b"face 2"
    with pytest.raises(DownloadError, match="1 missing"):
        download_celeba(tmp_path / "b", f"{base}/celeba.zip", count=6, progress=False)
    assert not (tmp_path / "b" / "celeba-7k").exists()


def test_celeba_without_gdown_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gdown", None)  # as on a plain install
    with pytest.raises(DownloadError, match=r"colorlab\[data\]"):
        download_celeba(tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_a_bad_celeba_archive_is_one_error_and_never_reused(server, tmp_path, capsys):
    """Not a zip, or too few images: one clear error, the archive is deleted, and a later call
    with a good source (another URL) downloads that one instead of reusing the bad file."""
    base, handler = server
    handler.files["bad.zip"] = b"this is not a zip archive"
    handler.files["few.zip"] = celeba_archive(2)
    handler.files["good.zip"] = celeba_archive(3)
    argv = ["data", "download", "celeba", "--root", str(tmp_path), "--quiet", "--source"]
    assert main([*argv, f"{base}/bad.zip"]) == 2
    err = capsys.readouterr().err
    assert "is not a valid zip archive" in err and "deleted" in err and err.count("\n") == 1
    with pytest.raises(DownloadError, match="missing"):
        download_celeba(tmp_path, f"{base}/few.zip", count=3, progress=False)
    assert not any((tmp_path / ".downloads").iterdir())  # neither bad archive is kept
    folder = download_celeba(tmp_path, f"{base}/good.zip", count=3, progress=False)
    assert (folder / "000003.jpg").read_bytes() == b"face 3"
