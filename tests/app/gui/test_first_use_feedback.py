"""What a first-time user tripped over (issue 12), part 2: messages, masks, status bar, export.

Driven with real mouse and key events, like part 1 (test_first_use.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from conftest import NUM_FRAMES, click_frame, drag_box, square_frame, when_modal
from fake_engine import fake_engine
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGraphicsRectItem,
)

from app.gui.dialogs.export_dialog import ExportDialog
from app.gui.dialogs.model_dialog import ModelDialog
from app.gui.files.error_text import describe_job_failure
from app.gui.window.main_window import MainWindow
from app.gui.window.platform_hint import XCB_LIBRARIES, platform_hint
from app.gui.worker.client import running_worker_threads
from app.project.autosave import Autosaver
from app.video import open_video


@pytest.mark.parametrize(
    ("action", "raw", "title", "says"),
    [
        (
            "segmenting",
            "RuntimeError: cannot run the model: no model is loaded",
            "No model is loaded",
            "Ctrl+M",
        ),
        (
            "loading the model",
            "AssertionError: Torch not compiled with CUDA enabled",
            "The GPU (CUDA) cannot be used",
            "Model > Device > cpu",
        ),
        (
            "loading the model",
            "ValueError: notes.txt: not a PyTorch checkpoint",
            "Cannot load the model",
            "notes.txt: not a PyTorch checkpoint. Choose another checkpoint",
        ),
        ("propagating", "torch.OutOfMemoryError: CUDA out of memory", "Out of memory", "Tiny"),
        ("propagating", "KeyError", "Error while propagating", "An unexpected error happened."),
    ],
)
def test_job_failures_read_as_sentences(action, raw, title, says):
    got_title, text = describe_job_failure(action, raw)
    assert got_title.startswith(title) and says in text
    assert "Error:" not in text and "Error" not in got_title.replace("Error while", "")


def test_bad_video_names_the_file_once(qtbot, opened, tmp_path, monkeypatch):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(notes), ""))
    qtbot.keyClick(opened, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: opened.error_box is not None and opened.error_box.isVisible())
    text = opened.error_box.text()
    assert text.count(str(notes)) == 1 and "Error" not in text, text
    assert opened.document.num_frames == NUM_FRAMES  # the open video stays


def test_failed_download_at_zero_does_not_promise_resume(qtbot, tmp_path):
    # Port 9 (discard) refuses connections on any test machine: a failure before any byte.
    dialog = ModelDialog(base_url="http://127.0.0.1:9", dest_dir=tmp_path)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.download_failed, timeout=20000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    label = dialog.progress_label.text()
    assert "resume" not in label and "Nothing was downloaded" in label
    assert "Error" not in dialog.error_label.text()
    dialog.done(0)


# ---- item 5: a click before any model gets its mask once one loads ------------------------------
def test_click_without_model_gets_its_mask_after_loading(
    qtbot, settings, recovery_root, video_path, tmp_path, monkeypatch
):
    settings.checkpoint = ""
    window = MainWindow(
        engine=fake_engine(),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    window.confirm_discard = lambda: True
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_video(str(video_path))
    with qtbot.waitSignal(window.client.job_failed, timeout=5000):
        click_frame(window, 40, 50)
    (obj,) = window.document.objects()
    assert window.error_box is not None and window.error_box.windowTitle() == "No model is loaded"
    assert "Ctrl+M" in window.error_box.text()
    assert window.document.mask(0, obj.obj_id) is None
    window.error_box.close()
    # A desktop gives the focus back to the window; the offscreen platform needs asking.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"x")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(checkpoint), ""))
    when_modal(ModelDialog, lambda d: qtbot.mouseClick(d.local_button, Qt.MouseButton.LeftButton))
    qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.document.mask(0, obj.obj_id) is not None, timeout=5000)
    mask = window.document.mask(0, obj.obj_id)
    assert mask[50, 40] and not mask[50, 100]  # the fake model's disc around the click
    assert window.session.unsynced == set()
    window.close()


# ---- item 8: hidden boxes, lingering masks ------------------------------------------------------
def _boxes(window: MainWindow) -> int:
    return sum(isinstance(item, QGraphicsRectItem) for item in window.canvas._marks)


def test_hidden_object_hides_its_box(qtbot, opened):
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    (obj,) = opened.document.objects()
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        drag_box(opened, 30, 40, 60, 70)
    assert _boxes(opened) == 1
    view = opened.panel.view
    cell = view.visualRect(opened.panel.model.index(0, 0)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert not opened.document.object(obj.obj_id).visible
    assert _boxes(opened) == 0
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert opened.document.object(obj.obj_id).visible and _boxes(opened) == 1


def test_undo_removes_the_mask_at_once(qtbot, opened):
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    (obj,) = opened.document.objects()
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    assert opened.document.mask(0, obj.obj_id) is not None
    # Checked before the event loop runs again: no worker round trip is needed.
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert opened.document.has_object(obj.obj_id)
    assert opened.document.mask(0, obj.obj_id) is None
    assert opened.canvas._overlay_item.pixmap().isNull()


# ---- item 9: a video cut short says so ----------------------------------------------------------
def _cut_short(tmp_path: Path) -> Path:
    """A 40-frame MP4 with its index up front, cut to its first 60 % of bytes."""
    full = tmp_path / "full.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(square_frame(i % 20), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    return cut


def test_reader_knows_a_file_was_cut_short(tmp_path, video_path):
    with open_video(_cut_short(tmp_path)) as reader:
        assert reader.truncated and reader.declared_frames == 40 and 0 < len(reader) < 40
    with open_video(video_path) as reader:
        assert not reader.truncated and reader.declared_frames == NUM_FRAMES


def test_truncated_video_is_reported_in_status_bar(qtbot, opened, tmp_path, monkeypatch):
    cut = _cut_short(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(cut), ""))
    with qtbot.waitSignal(opened.session.session_ready, timeout=10000):
        qtbot.keyClick(opened, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    shown = opened.document.num_frames
    assert 0 < shown < 40
    message = opened.statusBar().currentMessage()
    assert message == f"cut.mp4 ends early: opened {shown} of the 40 frames it lists"
    assert opened.error_box is None  # said once, in the status bar, not as a dialog


def test_complete_video_opens_without_warning(qtbot, opened, video_path):
    with qtbot.waitSignal(opened.session.session_ready, timeout=10000):
        assert opened.open_video(str(video_path))
    assert "ends early" not in opened.statusBar().currentMessage()


# ---- item 10: a bare Linux desktop -------------------------------------------------------------
def test_hint_names_the_missing_packages():
    absent = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    hint = platform_hint({"DISPLAY": ":0"}, loads=lambda so: so not in absent, platform="linux")
    assert "\n" not in hint
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1  (see README" in hint
    everything = platform_hint({}, loads=lambda so: True, platform="linux")
    assert "DISPLAY and WAYLAND_DISPLAY unset" in everything


def test_readme_lists_the_packages_the_hint_names():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    assert all(package in setup for package in XCB_LIBRARIES.values())


def test_failing_platform_plugin_exits_with_the_hint(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    # Nothing listens on display :97 in a test run; Qt then cannot load its xcb plugin.
    env.update(QT_QPA_PLATFORM="xcb", DISPLAY=":97", HOME=str(tmp_path))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    done = subprocess.run(
        [sys.executable, "-c", "from app.gui.main import run_app; run_app(None)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == platform_hint(env)
    assert "Traceback" not in done.stderr and "core dumped" not in done.stderr


# ---- item 8: quitting --------------------------------------------------------------------------
def test_quit_hides_at_once_and_waits_for_one_frame_only(qtbot, settings, video_path):
    sessions: list = []
    window = MainWindow(engine=fake_engine(sessions=sessions), settings=settings, autosaver=None)
    window.confirm_discard = lambda: True
    qtbot.addWidget(window)
    window.show()
    window.load_model(settings.checkpoint, "cpu")
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        window.open_video(str(video_path))
    started = threading.Event()
    seen_visible: list[bool] = []
    session = sessions[-1]
    plain_encode = session.encode_frame

    def slow_encode(frame: int) -> None:  # a large model encoding on a CPU
        started.set()
        time.sleep(0.5)
        seen_visible.append(window.isVisible())
        plain_encode(frame)

    session.encode_frame = slow_encode
    window.client.focus(5)  # idle encoding around frame 5 starts
    qtbot.waitUntil(started.is_set, timeout=5000)
    begin = time.perf_counter()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    took = time.perf_counter() - begin
    assert not window.isVisible()
    assert took < 0.9
    # The close does not wait for the frame in progress (the app's process ends without
    # it, see test_quit.py); that frame ends hidden and no further frame is started.
    qtbot.waitUntil(lambda: not running_worker_threads(), timeout=5000)
    assert seen_visible == [False]


# ---- export dialog: the command line's options, and only the current export's status ----------
def _export_dialog(qtbot, opened) -> ExportDialog:
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        opened.propagate("forward")
    qtbot.keyClick(opened, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = opened.files.export_dialog
    qtbot.waitExposed(dialog)
    return dialog


def _choose(qtbot, combo, data) -> None:
    """Pick an entry of a combo box with the keyboard, as a user tabbing through would."""
    combo.setFocus()
    while combo.currentData() != data:
        qtbot.keyClick(combo, Qt.Key.Key_Down)


def test_export_dialog_writes_images_and_polygons(qtbot, opened, tmp_path):
    dialog = _export_dialog(qtbot, opened)
    _choose(qtbot, dialog.format, "coco")
    assert dialog.polygons.isEnabled() and not dialog.binary_masks.isEnabled()
    out = tmp_path / "out" / "masks.json"
    out.parent.mkdir()
    dialog.output.setText(str(out))
    _choose(qtbot, dialog.images, "jpg")
    qtbot.mouseClick(dialog.polygons, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.export_finished, timeout=20000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    data = json.loads(out.read_text())
    assert data["annotations"] and all(
        isinstance(a["segmentation"], list) for a in data["annotations"]
    )
    assert len(list((out.parent / "JPEGImages").rglob("*.jpg"))) == NUM_FRAMES
    assert dialog.status.text() == f"Exported {NUM_FRAMES} of {NUM_FRAMES} frames"
    # Changing a setting clears the finished export's status and progress.
    qtbot.mouseClick(dialog.polygons, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "" and dialog.bar.value() == -1
    dialog.close()


def test_export_dialog_writes_binary_pngs(qtbot, opened, tmp_path):
    dialog = _export_dialog(qtbot, opened)
    _choose(qtbot, dialog.format, "png")
    assert dialog.binary_masks.isEnabled() and not dialog.polygons.isEnabled()
    out = tmp_path / "pngs"
    dialog.output.setText(str(out))
    qtbot.mouseClick(dialog.binary_masks, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.export_finished, timeout=20000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(written) > NUM_FRAMES, written[:5]  # per-object PNGs besides the label maps
    dialog.close()
