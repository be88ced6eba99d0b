"""Confidence strip, drift ticks and doubtful-frame navigation, with real key events."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import click_frame, when_modal
from fake_engine import FakeSession, disc
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QInputDialog

from app.gui.timeline.confidence import DRIFT_COLOR, GOOD_COLOR, LOW_COLOR, STRIP_HEIGHT

LOW_IOU = {6: 0.3, 14: 0.55}
DRIFT_FRAME = 10
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def tracked(qtbot, opened, monkeypatch):
    """One object clicked on frame 0 and propagated; low IoU on LOW_IOU frames and a
    mask that balloons on DRIFT_FRAME (drift by area)."""
    plain = FakeSession.result

    def result(self, obj_id, frame):
        r = plain(self, obj_id, frame)
        if frame == DRIFT_FRAME:
            r = dataclasses.replace(r, mask=disc(self.video_size, 40 + 2 * frame, 50, 28))
        return dataclasses.replace(r, iou=LOW_IOU.get(frame, 0.9))

    monkeypatch.setattr(FakeSession, "result", result)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_T)
    opened.document.set_current_frame(0)
    return opened


def _obj(window) -> int:
    return window.document.objects()[0].obj_id


def test_engine_figures_reach_the_document(tracked):
    quality = tracked.document.store.quality
    obj = _obj(tracked)
    assert quality.get(6, obj) == pytest.approx((0.3, 5.0))
    assert quality.get(3, obj)[0] == pytest.approx(0.9)
    assert quality.get(0, obj)[0] == pytest.approx(0.9)  # the clicked keyframe, too


def test_next_and_previous_doubtful_frame_keys(qtbot, tracked):
    doc, canvas = tracked.document, tracked.canvas
    visited = []
    for _ in range(3):
        qtbot.keyClick(canvas, Qt.Key.Key_Period, CTRL)
        visited.append(doc.current_frame)
    assert visited == [6, DRIFT_FRAME, 14]
    qtbot.keyClick(canvas, Qt.Key.Key_Period, CTRL)
    assert doc.current_frame == 14
    assert "No more doubtful frames" in tracked.statusBar().currentMessage()
    qtbot.keyClick(canvas, Qt.Key.Key_Comma, CTRL)
    assert doc.current_frame == DRIFT_FRAME
    qtbot.keyClick(canvas, Qt.Key.Key_Comma, CTRL)
    qtbot.keyClick(canvas, Qt.Key.Key_Comma, CTRL)
    assert doc.current_frame == 6
    assert "No more doubtful frames" in tracked.statusBar().currentMessage()


def test_no_more_doubtful_frames_goes_when_moving_away(qtbot, tracked):
    """The message is about the frame it was said on: stepping back (or forward from
    "before this one") makes it untrue, so the status bar drops it at once."""
    doc, canvas, bar = tracked.document, tracked.canvas, tracked.statusBar()
    doc.set_current_frame(14)
    qtbot.keyClick(canvas, Qt.Key.Key_Period, CTRL)
    assert doc.current_frame == 14
    assert "No more doubtful frames" in bar.currentMessage() and "after" in bar.currentMessage()
    qtbot.keyClick(canvas, Qt.Key.Key_Left)
    assert doc.current_frame == 13
    assert "No more doubtful frames" not in bar.currentMessage()
    doc.set_current_frame(2)
    qtbot.keyClick(canvas, Qt.Key.Key_Comma, CTRL)
    assert "before this one" in bar.currentMessage()
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert doc.current_frame == 3 and "No more doubtful frames" not in bar.currentMessage()


def test_without_a_selected_object_any_objects_frames_count(qtbot, tracked):
    doc = tracked.document
    doc.set_current_frame(7)
    with qtbot.waitSignal(tracked.client.mask_ready, timeout=5000):
        qtbot.keyClick(tracked.canvas, Qt.Key.Key_N)  # a second object, made active
        click_frame(tracked, 120, 20)
    second = doc.active_object
    assert second != _obj(tracked)
    doc.store.quality.set_confidence(7, second, 0.1, 2.0)
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Comma, CTRL)
    assert doc.current_frame == 7  # the second object has nothing doubtful before frame 7
    doc.set_active_object(None)
    doc.set_current_frame(2)
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Period, CTRL)
    assert doc.current_frame == 6
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Period, CTRL)
    assert doc.current_frame == 7


def test_threshold_setting_changes_what_is_doubtful_and_persists(qtbot, tracked, settings):
    def answer(dialog: QInputDialog) -> None:
        dialog.setDoubleValue(0.4)
        dialog.accept()

    when_modal(QInputDialog, answer)
    tracked.actions.doubtful_threshold.trigger()
    assert settings.doubtful_threshold == pytest.approx(0.4)
    assert tracked.tracks.threshold == pytest.approx(0.4)
    tracked.activateWindow()  # the dialog had the keyboard
    qtbot.waitUntil(lambda: QApplication.activeWindow() is tracked, timeout=5000)
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Period, CTRL)
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Period, CTRL)
    assert tracked.document.current_frame == DRIFT_FRAME  # 0.55 on frame 14 is fine now
    qtbot.keyClick(tracked.canvas, Qt.Key.Key_Period, CTRL)
    assert tracked.document.current_frame == DRIFT_FRAME


def _color_near(image, x: float, y: int, want) -> bool:
    pixels = {image.pixelColor(round(x) + dx, y).name() for dx in (-1, 0, 1)}
    return want.name() in pixels


def test_strip_shows_warning_colour_and_drift_tick(tracked):
    tracks = tracked.tracks
    tracked.document.set_current_frame(19)  # keep the playhead off the frames looked at
    image = tracks.grab().toImage()
    row = tracks.row_rect(0)
    strip_y = round(row.bottom()) - STRIP_HEIGHT + 1
    assert _color_near(image, tracks.x_of(6), strip_y, LOW_COLOR)
    assert _color_near(image, tracks.x_of(14), strip_y, LOW_COLOR)
    assert _color_near(image, tracks.x_of(3), strip_y, GOOD_COLOR)
    assert not _color_near(image, tracks.x_of(3), strip_y, LOW_COLOR)
    tick_y = round(row.top()) + 2
    assert _color_near(image, tracks.x_of(DRIFT_FRAME), tick_y, DRIFT_COLOR)
    assert not _color_near(image, tracks.x_of(3), tick_y, DRIFT_COLOR)
