"""What a first-time user tripped over (issue 12), driven with real mouse and key events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from conftest import NUM_FRAMES, click_frame, drag_box, make_window, square_frame
from fake_engine import fake_engine
from PySide6.QtCore import QPoint, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGraphicsRectItem,
    QMenu,
    QMessageBox,
    QWidget,
)

from app.autosave import Autosaver
from app.devices import device_problems
from app.gui.engine import Engine
from app.gui.error_text import describe_job_failure
from app.gui.export_dialog import ExportDialog
from app.gui.main_window import MainWindow
from app.gui.model_dialog import ModelDialog
from app.gui.platform_hint import XCB_LIBRARIES, platform_hint
from app.gui.settings import AppSettings
from app.gui.timeline import timecode
from app.video import open_video


def test_timecode_is_milliseconds_not_frames():
    # Frame 231 of a 25 fps clip starts at 9.24 s; frame 249 (the last of 250) at 9.96 s.
    assert timecode(231, 25) == "00:00:09.240"
    assert timecode(249, 25) == "00:00:09.960"
    assert timecode(1, 30) == "00:00:00.033"
    assert timecode(3 * 3600 * 24 + 12, 24) == "03:00:00.500"


def test_scrub_bar_shows_real_timecode(qtbot, opened):
    qtbot.keyClick(opened.canvas, Qt.Key.Key_End)
    # 10 fps test video: the last frame (19) starts at 1.9 s.
    assert opened.scrub.timecode.text() == "00:00:01.900 / 00:00:01.900"


def test_enter_in_frame_box_gives_keys_back_to_canvas(qtbot, opened):
    spin = opened.scrub.spin
    qtbot.mouseClick(spin.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "7")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    assert opened.document.current_frame == 7
    qtbot.waitUntil(opened.canvas.hasFocus, timeout=2000)
    # Right steps one frame; in the number box it would only move the text cursor.
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Right)
    assert opened.document.current_frame == 8
    # Comma jumps to the previous keyframe: frame 2, prompted by a click.
    opened.document.set_current_frame(2)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    opened.document.set_current_frame(NUM_FRAMES - 1)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Comma)
    assert opened.document.current_frame == 2
    objects = len(opened.document.objects())
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    assert len(opened.document.objects()) == objects + 1


# ---- item 1: a rejected model choice is not remembered -----------------------------------------
def when_modal(kind: type, handle: Callable[[QWidget], None]) -> None:
    """Run `handle(dialog)` once a modal `kind` is up (it blocks the test in `exec`)."""

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind):
            handle(widget)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def test_rejected_checkpoint_keeps_settings_and_model(
    qtbot, window, settings, tmp_path, monkeypatch
):
    notes = tmp_path / "bad-notes.txt"
    notes.write_text("not a checkpoint")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(notes), ""))
    qtbot.waitUntil(lambda: window.model_description() is not None, timeout=5000)
    intro: list[str] = []

    def pick_local_file(dialog: ModelDialog) -> None:
        intro.append(dialog.intro.text())
        qtbot.mouseClick(dialog.local_button, Qt.MouseButton.LeftButton)

    when_modal(ModelDialog, pick_local_file)
    with qtbot.waitSignal(window.client.job_failed, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    # Item 8: with a model loaded, Ctrl+M says which one instead of "needs a checkpoint".
    assert intro == [
        "Current model: fake-tiny on cpu. Pick another checkpoint, or Close to keep it."
    ]
    assert window.engine_status.model[1].text() == "fake-tiny"
    settings.sync()
    again = AppSettings(QSettings(settings.store.fileName(), QSettings.Format.IniFormat))
    assert (again.checkpoint, again.device) == ("fake.pt", "cpu")


def test_accepted_checkpoint_is_remembered(qtbot, window, settings, tmp_path, monkeypatch):
    good = tmp_path / "good.pt"
    good.write_bytes(b"x")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(good), ""))
    when_modal(ModelDialog, lambda d: qtbot.mouseClick(d.local_button, Qt.MouseButton.LeftButton))
    with qtbot.waitSignal(window.client.model_loaded, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert settings.checkpoint == str(good)


def click_menu_action(qtbot, menu: QMenu, text: str) -> None:
    menu.popup(QPoint(0, 0))
    qtbot.waitExposed(menu)
    action = next(a for a in menu.actions() if a.text() == text)
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    menu.hide()


def test_rejected_device_keeps_settings(qtbot, all_devices, settings):
    base = fake_engine()

    def load_model(checkpoint: str, device: str):
        if device == "cuda":
            raise RuntimeError("Torch not compiled with CUDA enabled")
        return base.load_model(checkpoint, device)

    engine = Engine(load_model, base.open_session, base.make_prompt)
    window = MainWindow(engine=engine, settings=settings, autosaver=None)
    qtbot.addWidget(window)
    window.show()
    window.load_model(settings.checkpoint, settings.device)
    qtbot.waitUntil(lambda: window.model_description() is not None, timeout=5000)
    with qtbot.waitSignal(window.client.job_failed, timeout=5000):
        click_menu_action(qtbot, window.device_menu, "cuda")
    assert settings.device == "cpu"
    checked = [a.text() for a in window.device_menu.actions() if a.isChecked()]
    assert checked == ["cpu"]
    with qtbot.waitSignal(window.client.model_loaded, timeout=5000):
        click_menu_action(qtbot, window.device_menu, "mps")
    assert settings.device == "mps"
    window.close()


def test_missing_devices_are_disabled_with_reason(qtbot, settings, recovery_root, monkeypatch):
    reasons = {"cpu": None, "cuda": "No NVIDIA GPU that PyTorch can use was found.", "mps": None}
    monkeypatch.setattr("app.devices.device_problems", lambda: reasons)
    window = make_window(qtbot, settings, recovery_root)
    cuda = next(a for a in window.device_menu.actions() if a.text() == "cuda")
    assert not cuda.isEnabled() and cuda.toolTip() == reasons["cuda"]
    click_menu_action(qtbot, window.device_menu, "cuda")
    assert settings.device == "cpu" and not cuda.isChecked()
    window.close()


def test_device_problems_match_torch():
    import torch

    problems = device_problems()
    assert problems["cpu"] is None
    assert (problems["cuda"] is None) == torch.cuda.is_available()


# ---- item 3: Save / Discard / Cancel, Save the default, asked before the file dialog -----------
def _unsaved(qtbot, opened: MainWindow) -> MainWindow:
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    assert opened.has_unsaved_changes()
    opened.confirm_discard = opened._confirm_discard_dialog
    return opened


def _record_dialogs(monkeypatch, events: list[str], *, save_to: Path | None = None) -> None:
    def get_open(*_a, **_k) -> tuple[str, str]:
        events.append("open dialog")
        return "", ""

    def get_save(*_a, **_k) -> tuple[str, str]:
        events.append("save dialog")
        return str(save_to), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", get_open)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", get_save)


def _answer_unsaved(qtbot, events: list[str], key: Qt.Key) -> None:
    def answer(box: QMessageBox) -> None:
        default = box.defaultButton()
        events.append(f"asked, default {box.standardButton(default).name}")
        qtbot.keyClick(box, key)

    when_modal(QMessageBox, answer)


def test_enter_saves_before_the_open_dialog(qtbot, opened, tmp_path, monkeypatch):
    window, events = _unsaved(qtbot, opened), []
    target = tmp_path / "work.masklet"
    _record_dialogs(monkeypatch, events, save_to=target)
    _answer_unsaved(qtbot, events, Qt.Key.Key_Return)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert events == ["asked, default Save", "save dialog", "open dialog"]
    assert target.is_file() and not window.has_unsaved_changes()


def test_escape_cancels_and_keeps_work(qtbot, opened, tmp_path, monkeypatch):
    window, events = _unsaved(qtbot, opened), []
    _record_dialogs(monkeypatch, events, save_to=tmp_path / "never.masklet")
    _answer_unsaved(qtbot, events, Qt.Key.Key_Escape)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert events == ["asked, default Save"]
    assert window.has_unsaved_changes() and len(window.document.objects()) == 1
    _answer_unsaved(qtbot, events, Qt.Key.Key_Escape)
    window.close()
    assert window.isVisible() and window.has_unsaved_changes()
    window.confirm_discard = lambda: True


def test_discard_is_asked_once_then_opens(qtbot, opened, video_path, monkeypatch):
    window, events = _unsaved(qtbot, opened), []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(video_path), ""))

    def discard(box: QMessageBox) -> None:
        events.append("asked")
        qtbot.mouseClick(box.button(QMessageBox.StandardButton.Discard), Qt.MouseButton.LeftButton)

    when_modal(QMessageBox, discard)
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert events == ["asked"] and window.document.objects() == []


# ---- item 4: error messages for people ----------------------------------------------------------
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
    # The frame in progress ends hidden; no further frame is started (each costs 0.5 s).
    assert seen_visible[-1] is False and len(seen_visible) == 1
    assert took < 0.9


# ---- export dialog: the command line's options, and only the current export's status ----------
def _export_dialog(qtbot, opened) -> ExportDialog:
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        opened.propagate("forward")
    qtbot.keyClick(opened, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = opened.export_dialog
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
