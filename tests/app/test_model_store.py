import dataclasses
import errno
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_checkpoint import fake_checkpoint_bytes

from app.models import model_store
from app.models.model_store import (
    CHECKPOINTS,
    DEFAULT_VARIANT,
    DownloadCancelled,
    DownloadError,
    cache_dir,
    download_checkpoint,
    find_downloaded,
    get_entry,
)

PAYLOAD = fake_checkpoint_bytes(pad_bytes=3 << 20)  # ~3 MiB: several 1 MiB blocks


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-body is what several tests do on purpose


class FileServer:
    """A 127.0.0.1 HTTP server for one file, with Range support and fault injection."""

    def __init__(self, files):
        self.files = files
        self.requests: list[dict] = []
        self.drop_after: int | None = None  # close the connection after this many body bytes
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.drop_after is not None:
                    body, server.drop_after = body[: server.drop_after], None
                self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def entry():
    return dataclasses.replace(get_entry(DEFAULT_VARIANT), filename="fake.pt")


@pytest.fixture
def server():
    srv = FileServer({"fake.pt": PAYLOAD})
    yield srv
    srv.close()


def _download(entry, dest, server, *, stop=lambda: False, seen=None):
    def progress(done, total):
        if seen is not None:
            seen.append((done, total))

    return download_checkpoint(
        entry, dest, progress=progress, should_stop=stop, base_url=server.url, timeout=10
    )


def test_catalogue_lists_the_official_files():
    assert {e.variant for e in CHECKPOINTS} == {
        f"{v}-{s}" for v in ("sam2.1", "sam2") for s in ("tiny", "small", "base-plus", "large")
    }
    tiny = get_entry("sam2.1-tiny")
    assert (
        tiny.url == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    )
    assert get_entry("sam2-large").url.endswith("/072824/sam2_hiera_large.pt")
    assert tiny.label == "SAM 2.1 Tiny"
    assert 140 * 2**20 < tiny.approx_size < 160 * 2**20
    with pytest.raises(ValueError, match="unknown checkpoint"):
        get_entry("sam3")


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKLET_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    assert model_store.checkpoint_dir() == tmp_path / "checkpoints"


def test_download_reports_progress_and_renames_atomically(tmp_path, server, entry):
    seen = []
    entry = dataclasses.replace(entry, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = _download(entry, tmp_path / "ckpt", server, seen=seen)
    assert path == tmp_path / "ckpt" / "fake.pt"
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "ckpt" / "fake.pt.part").exists()
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert find_downloaded(entry, tmp_path / "ckpt") == path
    # Already there: no second request.
    count = len(server.requests)
    assert _download(entry, tmp_path / "ckpt", server) == path
    assert len(server.requests) == count


def test_interrupted_download_resumes_with_range(tmp_path, server, entry):
    server.drop_after = 1_500_000
    with pytest.raises(DownloadError, match="try again to resume"):
        _download(entry, tmp_path, server)
    part = tmp_path / "fake.pt.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    kept = part.stat().st_size
    path = _download(entry, tmp_path, server)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={kept}-"


def test_cancel_keeps_part_then_resumes(tmp_path, server, entry):
    seen = []
    with pytest.raises(DownloadCancelled, match="cancelled"):
        _download(entry, tmp_path, server, stop=lambda: len(seen) > 1, seen=seen)
    kept = (tmp_path / "fake.pt.part").stat().st_size
    assert kept == model_store._BLOCK
    assert not (tmp_path / "fake.pt").exists()
    entry = dataclasses.replace(entry, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert _download(entry, tmp_path, server).read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={kept}-"


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, entry):
    (tmp_path / "fake.pt.part").write_bytes(b"garbage that is not a prefix")
    server.ignore_range = True
    assert _download(entry, tmp_path, server).read_bytes() == PAYLOAD


def test_stale_oversized_part_restarts(tmp_path, server, entry):
    (tmp_path / "fake.pt.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    assert _download(entry, tmp_path, server).read_bytes() == PAYLOAD
    assert server.requests[0]["range"] is not None  # 416, then a fresh full request
    assert server.requests[-1]["range"] is None


def test_hash_mismatch_deletes_the_part(tmp_path, server, entry):
    entry = dataclasses.replace(entry, sha256="0" * 64)
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        _download(entry, tmp_path, server)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_is_reported(tmp_path, server, entry):
    entry = dataclasses.replace(entry, size=len(PAYLOAD) + 1)
    with pytest.raises(DownloadError, match="expected"):
        _download(entry, tmp_path, server)
    assert not (tmp_path / "fake.pt").exists()


def test_404_is_a_clear_error(tmp_path, server, entry):
    entry = dataclasses.replace(entry, filename="missing.pt")
    with pytest.raises(DownloadError, match="HTTP 404 not found") as info:
        _download(entry, tmp_path, server)
    assert "\n" not in str(info.value)


def test_network_error_is_a_clear_error(tmp_path, entry):
    srv = FileServer({})
    url = srv.url
    srv.close()  # nothing listens on that port any more
    with pytest.raises(DownloadError, match="network error"):
        download_checkpoint(
            entry, tmp_path, progress=lambda d, t: None, should_stop=lambda: False, base_url=url
        )


def test_disk_full_is_a_clear_error(tmp_path, server, entry, monkeypatch):
    def full(f, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_store, "_append", full)
    with pytest.raises(DownloadError, match="disk full"):
        _download(entry, tmp_path, server)


def test_not_enough_space_is_checked_up_front(tmp_path, server, entry, monkeypatch):
    monkeypatch.setattr(model_store.shutil, "disk_usage", lambda p: type("U", (), {"free": 10}))
    with pytest.raises(DownloadError, match="not enough disk space"):
        _download(entry, tmp_path, server)


def test_wrong_contents_are_refused_without_a_digest(tmp_path, entry):
    srv = FileServer({"fake.pt": b"<html>Not Found</html>" * 100_000})
    try:
        with pytest.raises(DownloadError, match="not a usable checkpoint"):
            _download(entry, tmp_path, srv)
    finally:
        srv.close()
    assert not (tmp_path / "fake.pt").exists()
    assert not (tmp_path / "fake.pt.part").exists()


def test_wrong_variant_is_refused(tmp_path, server):
    large = dataclasses.replace(get_entry("sam2.1-large"), filename="fake.pt")
    with pytest.raises(
        DownloadError, match="downloaded a sam2.1-tiny checkpoint, expected sam2.1-large"
    ):
        _download(large, tmp_path, server)
