"""What a first-time user tripped over (issue 12), driven with real mouse and key events."""

from __future__ import annotations

from pathlib import Path

from conftest import NUM_FRAMES, click_frame, make_window, when_modal
from fake_engine import fake_engine
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QMenu,
    QMessageBox,
)

from app.gui.dialogs.model_dialog import ModelDialog
from app.gui.settings import AppSettings
from app.gui.timeline.widgets import timecode
from app.gui.window.main_window import MainWindow
from app.gui.worker.engine import Engine
from app.models.devices import device_problems


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
    monkeypatch.setattr("app.models.devices.device_problems", lambda: reasons)
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
    opened.confirm_discard = opened.files.confirm_discard_dialog
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
