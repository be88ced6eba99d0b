import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_checkpoint import fake_checkpoint_bytes
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app.gui.dialogs import model_dialog
from app.gui.dialogs.model_dialog import ModelDialog
from app.models.model_store import DEFAULT_VARIANT, get_entry

TINY = get_entry(DEFAULT_VARIANT).filename
PAYLOAD = fake_checkpoint_bytes(pad_bytes=5 << 19)  # ~2.5 MiB: a few 1 MiB blocks


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the client hanging up after a cancel is expected


class GatedServer:
    """Serves PAYLOAD with Range support; can hold the body after `hold_after` bytes."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.hold_after = 0
        self.ranges: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.ranges.append(self.headers.get("Range"))
                if self.path.lstrip("/") != TINY:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(PAYLOAD) - start))
                self.end_headers()
                body = PAYLOAD[start:]
                cut = outer.hold_after if not outer.gate.is_set() else 0
                self.wfile.write(body[:cut])
                self.wfile.flush()
                outer.gate.wait(10)
                self.wfile.write(body[cut:])

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,))
        self.thread.start()

    def close(self):
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    srv = GatedServer()
    yield srv
    srv.close()


@pytest.fixture
def dialog(qtbot, server, tmp_path):
    dlg = ModelDialog(base_url=server.url, dest_dir=tmp_path)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.done(QDialog.DialogCode.Rejected)
    assert not dlg.is_downloading(), "download thread outlived the test"


def test_lists_checkpoints_with_tiny_preselected(dialog):
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert len(texts) == 8
    assert all("MiB" in t for t in texts)
    assert dialog.selected_entry().variant == "sam2.1-tiny"
    assert dialog.list.currentItem().text().startswith("SAM 2.1 Tiny")
    assert dialog.download_button.isEnabled() and not dialog.stop_button.isEnabled()


def test_download_shows_progress_and_returns_the_path(qtbot, dialog, tmp_path):
    with qtbot.waitSignal(dialog.download_finished, timeout=20000) as blocker:
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    path = blocker.args[0]
    assert path == tmp_path / TINY
    assert path.read_bytes() == PAYLOAD
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.checkpoint_path() == path
    assert dialog.device() == "cpu"
    assert dialog.progress.value() == 100
    assert "MiB (100%)" in dialog.progress_label.text()


def test_cancel_leaves_a_resumable_part(qtbot, dialog, server, tmp_path):
    server.gate.clear()
    server.hold_after = 1_200_000  # one 1 MiB block arrives, then the server stalls
    with qtbot.waitSignal(
        dialog.download_progressed, timeout=20000, check_params_cb=lambda done, total: done > 0
    ):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.is_downloading() and not dialog.download_button.isEnabled()
    with qtbot.waitSignal(dialog.download_cancelled, timeout=20000):
        qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
        server.gate.set()
    part = tmp_path / (TINY + ".part")
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert not (tmp_path / TINY).exists()
    assert "will resume" in dialog.list.currentItem().text()
    assert dialog.isVisible() and dialog.download_button.isEnabled()
    kept = part.stat().st_size
    with qtbot.waitSignal(dialog.download_finished, timeout=20000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / TINY).read_bytes() == PAYLOAD
    assert server.ranges[-1] == f"bytes={kept}-"


def test_errors_are_shown_in_the_dialog(qtbot, dialog):
    dialog.list.setCurrentRow(1)  # sam2.1-small: this server does not have it
    with qtbot.waitSignal(dialog.download_failed, timeout=20000) as blocker:
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert "HTTP 404" in blocker.args[0]
    assert "HTTP 404" in dialog.error_label.text()
    assert dialog.isVisible() and dialog.download_button.isEnabled()
    assert dialog.checkpoint_path() is None


def test_choose_local_file(qtbot, dialog, tmp_path, monkeypatch):
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    monkeypatch.setattr(
        model_dialog.QFileDialog, "getOpenFileName", lambda *a, **k: (str(local), "")
    )
    qtbot.mouseClick(dialog.local_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.checkpoint_path() == local


def test_downloaded_checkpoint_is_used_without_network(qtbot, dialog, server, tmp_path):
    (tmp_path / TINY).write_bytes(b"done")
    dialog._refresh_items()
    assert dialog.download_button.text() == "Use"
    assert "downloaded" in dialog.list.currentItem().text()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.checkpoint_path() == tmp_path / TINY
    assert server.ranges == []
