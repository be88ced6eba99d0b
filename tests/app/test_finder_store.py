"""Downloading sam3.pt with the user's Hugging Face token, against a local HTTP server: the
header is sent (and not to a redirect's target), 401/403 and no token are one line each,
an interrupted download resumes, and the token is written nowhere."""

from __future__ import annotations

import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from app.models import finder_store
from app.models.finder_store import FINDER, HfToken, download_finder, find_token
from app.models.model_store import DownloadError

TOKEN = "hf_TESTtokenNeverWrittenAnywhere1234"


def sam3_bytes(pad: int = 3 << 20) -> bytes:
    """A tiny file shaped like sam3.pt: `detector.*` and `tracker.*` keys under "model"."""
    state = {
        "detector.backbone.w": torch.zeros(pad // 4, dtype=torch.float32),
        "tracker.w": torch.ones(4),
    }
    buf = io.BytesIO()
    torch.save({"model": state}, buf)
    return buf.getvalue()


PAYLOAD = sam3_bytes()


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class HubServer:
    """Serves `sam3.pt` for one accepted token; can answer 403, cut a body short, or redirect
    the file to another path as huggingface.co redirects to its CDN."""

    def __init__(self, *, status: int | None = None, redirect: bool = False) -> None:
        self.requests: list[dict] = []
        self.status, self.redirect, self.drop_after = status, redirect, None
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                auth = self.headers.get("Authorization")
                hub.requests.append({"path": self.path, "auth": auth, **self._range()})
                if self.path == "/sam3.pt" and hub.redirect:
                    self.send_response(302)
                    self.send_header("Location", "/cdn/sam3.pt?signed=1")
                    self.end_headers()
                    return
                if self.path == "/sam3.pt" and auth != f"Bearer {TOKEN}":
                    self.send_error(401)
                    return
                if hub.status is not None:
                    self.send_error(hub.status)
                    return
                self._send_file()

            def _range(self):
                return {"range": self.headers.get("Range")}

            def _send_file(self):
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    total = len(PAYLOAD)
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD) - start))
                self.end_headers()
                body = PAYLOAD[start:]
                if hub.drop_after is not None:
                    body, hub.drop_after = body[: hub.drop_after], None
                self.wfile.write(body)

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def hub():
    server = HubServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_user_token(monkeypatch, tmp_path):
    """Never read the real user's token: HF_HOME points at an empty folder."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def fetch(dest, hub, token=None):
    return download_finder(
        dest,
        progress=lambda *_: None,
        should_stop=lambda: False,
        token=token,
        base_url=hub.url,
        timeout=10,
    )


def test_the_entry_is_the_gated_hub_file():
    assert FINDER.url == "https://huggingface.co/facebook/sam3/resolve/main/sam3.pt"
    assert FINDER.filename == "sam3.pt"
    assert TOKEN not in repr(HfToken("x", TOKEN))


def test_token_from_the_variable_then_the_saved_file(monkeypatch, tmp_path):
    assert find_token() is None
    saved = tmp_path / "hf-home" / "token"
    saved.parent.mkdir()
    saved.write_text(TOKEN + "\n")
    token = find_token()
    assert token is not None and token.value == TOKEN and token.source == str(saved)
    monkeypatch.setenv("HF_TOKEN", " hf_fromvariable ")
    assert find_token() == HfToken("the HF_TOKEN variable", "hf_fromvariable")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert finder_store.hf_token_path() == tmp_path / "huggingface" / "token"
    assert find_token() is None


def test_a_token_file_that_is_not_a_token_is_ignored(tmp_path):
    saved = tmp_path / "hf-home" / "token"
    saved.parent.mkdir()
    saved.write_bytes(b"x" * 5000)
    assert find_token() is None
    saved.write_text("two\nlines")
    assert find_token() is None
    saved.unlink()
    os.mkfifo(saved)  # never waited on
    assert find_token() is None


def test_a_variable_that_is_not_one_line_is_no_token(monkeypatch, hub, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_abc\r\nX-Injected: 1")
    assert find_token() is None
    with pytest.raises(DownloadError, match="^no Hugging Face token found"):
        fetch(tmp_path, hub)
    assert hub.requests == []


def test_download_sends_the_saved_token_and_writes_it_nowhere(hub, tmp_path):
    saved = tmp_path / "hf-home" / "token"
    saved.parent.mkdir()
    saved.write_text(TOKEN)
    dest = tmp_path / "cache"
    path = fetch(dest, hub)
    assert path == dest / "sam3.pt" and path.read_bytes() == PAYLOAD
    assert hub.requests[0]["auth"] == f"Bearer {TOKEN}"
    for file in dest.rglob("*"):
        assert TOKEN.encode() not in file.read_bytes()


def test_the_token_does_not_follow_a_redirect(tmp_path):
    hub = HubServer(redirect=True)
    try:
        path = fetch(tmp_path, hub, HfToken("test", TOKEN))
    finally:
        hub.close()
    assert path.read_bytes() == PAYLOAD
    first, second = hub.requests
    assert first["auth"] == f"Bearer {TOKEN}" and second["path"].startswith("/cdn/")
    assert second["auth"] is None


def test_no_token_is_one_line_before_any_request(hub, tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch(tmp_path, hub)
    message = str(err.value)
    assert "no Hugging Face token" in message and "huggingface.co/facebook/sam3" in message
    assert "hf auth login" in message and "\n" not in message
    assert hub.requests == []


def test_refused_tokens_say_how_to_get_access(tmp_path):
    wrong = HubServer()
    try:
        with pytest.raises(DownloadError) as err:
            fetch(tmp_path, wrong, HfToken("the HF_TOKEN variable", "hf_wrong"))
    finally:
        wrong.close()
    assert err.value.status == 401 and "the HF_TOKEN variable" in str(err.value)
    assert "hf_wrong" not in str(err.value)
    gated = HubServer(status=403)
    try:
        with pytest.raises(DownloadError) as err:
            fetch(tmp_path, gated, HfToken("test", TOKEN))
    finally:
        gated.close()
    message = str(err.value)
    assert message.startswith("your token has no access to facebook/sam3")
    assert "request access at https://huggingface.co/facebook/sam3" in message
    assert TOKEN not in message and "\n" not in message
    assert not (tmp_path / "sam3.pt").exists()


def test_an_interrupted_download_resumes_with_the_token(hub, tmp_path):
    hub.drop_after = len(PAYLOAD) // 3
    with pytest.raises(DownloadError, match="try again to resume"):
        fetch(tmp_path, hub, HfToken("test", TOKEN))
    kept = (tmp_path / "sam3.pt.part").stat().st_size
    assert 0 < kept < len(PAYLOAD)
    path = fetch(tmp_path, hub, HfToken("test", TOKEN))
    assert path.read_bytes() == PAYLOAD
    assert hub.requests[-1]["range"] == f"bytes={kept}-"
    assert hub.requests[-1]["auth"] == f"Bearer {TOKEN}"


def test_a_file_that_is_not_sam3_is_refused_and_removed(hub, tmp_path, monkeypatch):
    buf = io.BytesIO()
    torch.save({"model": {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(2)}}, buf)
    monkeypatch.setitem(globals(), "PAYLOAD", buf.getvalue())
    with pytest.raises(DownloadError, match="not a usable SAM 3 checkpoint.*SAM 2"):
        fetch(tmp_path, hub, HfToken("test", TOKEN))
    assert not any(Path(tmp_path).glob("sam3.pt*"))
