"""What a first-time user tripped over (issue 12), driven with real mouse and key events."""

from __future__ import annotations

from conftest import NUM_FRAMES, click_frame
from PySide6.QtCore import Qt

from app.gui.timeline import timecode


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
