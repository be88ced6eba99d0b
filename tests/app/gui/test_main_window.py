"""The main window driven with real mouse and key events, on the fake engine."""

from __future__ import annotations

import pytest
from conftest import NUM_FRAMES, click_frame, drag_box
from PySide6.QtCore import Qt

from app.gui.document.annotations import MaskState


def _only_object(doc) -> int:
    assert len(doc.objects()) == 1
    return doc.objects()[0].obj_id


def test_click_adds_object_and_mask(qtbot, opened):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    obj = _only_object(doc)
    ((x, y, label),) = doc.prompts(0, obj).points
    assert (x, y, label) == (pytest.approx(40, abs=1), pytest.approx(50, abs=1), 1)
    mask = doc.mask(0, obj)
    assert mask is not None and mask[50, 40] and not mask[5, 150]
    assert not opened.canvas_ctl._canvas._overlay_item.pixmap().isNull()


def test_right_click_and_shift_click_are_negative(qtbot, opened):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 100, 60, Qt.MouseButton.RightButton)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 120, 60, mods=Qt.KeyboardModifier.ShiftModifier)
    obj = _only_object(doc)
    assert [p[2] for p in doc.prompts(0, obj).points] == [1, 0, 0]


def test_box_drag_adds_box_prompt(qtbot, opened):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        drag_box(opened, 20, 30, 80, 90)
    obj = _only_object(doc)
    box = doc.prompts(0, obj).box
    assert box == pytest.approx((20, 30, 80, 90), abs=1.5)
    assert doc.mask(0, obj)[60, 50]


def test_ctrl_click_removes_point(qtbot, opened):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    obj = _only_object(doc)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 41, 50, mods=Qt.KeyboardModifier.ControlModifier)
    assert doc.prompts(0, obj).is_empty()
    assert doc.mask_state(0, obj) == MaskState.NONE


def test_propagate_streams_masks_and_undo_redo(qtbot, opened):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    obj = _only_object(doc)
    seen = []
    opened.client.frame_ready.connect(lambda r: seen.append(r.frame))
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_T)
    assert seen == list(range(NUM_FRAMES))
    track = doc.state_track(obj)
    assert (track != MaskState.NONE).all()
    # The fake disc moves 2 px per frame from x=40; it is present on every frame here.
    assert doc.mask(10, obj)[50, 60]
    # Correct on a later frame, then undo and redo the correction.
    doc.set_current_frame(12)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 100, 70)
    assert doc.keyframes(obj) == [0, 12]
    assert doc.mask(12, obj)[70, 100]
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.keyframes(obj) == [0]
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert doc.keyframes(obj) == [0, 12]


def test_step_play_and_keyframe_navigation(qtbot, opened):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Right)
    assert doc.current_frame == 1
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert doc.current_frame == 11
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Left)
    assert doc.current_frame == 10
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Home)
    assert doc.current_frame == 0
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Period)
    assert doc.current_frame == 10
    qtbot.keyClick(opened.canvas, Qt.Key.Key_End)
    assert doc.current_frame == NUM_FRAMES - 1
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Comma)
    assert doc.current_frame == 10
    assert "00:00:01.000" in opened.scrub.timecode.text()
    qtbot.keyClick(opened.canvas, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: doc.current_frame >= 13, timeout=5000)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_K)
    assert not opened.playback.is_playing


def test_new_object_shortcut_and_delete_with_undo(qtbot, opened):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    ids = [o.obj_id for o in doc.objects()]
    assert len(ids) == 2 and doc.active_object == ids[1]
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    assert doc.keyframes(ids[1]) == [0] and doc.keyframes(ids[0]) == []
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Delete)
    assert [o.obj_id for o in doc.objects()] == ids[:1]
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        opened.actions.undo.trigger()
    assert [o.obj_id for o in doc.objects()] == ids
    assert doc.mask(0, ids[1]) is not None


def test_timeline_click_jumps(qtbot, opened):
    tracks = opened.tracks
    x = round(tracks.x_of(15)) + 1
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    QTest.mouseClick(
        tracks, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x, 10)
    )
    assert opened.document.current_frame == 15


def test_overlay_toggle_and_zoom(qtbot, opened):
    canvas = opened.canvas
    qtbot.keyClick(canvas, Qt.Key.Key_O)
    assert not canvas.overlay_visible()
    qtbot.keyClick(canvas, Qt.Key.Key_O)
    assert canvas.overlay_visible()
    fit = canvas.zoom
    qtbot.keyClick(canvas, Qt.Key.Key_Plus)
    assert canvas.zoom > fit
    qtbot.keyClick(canvas, Qt.Key.Key_F)
    assert canvas.zoom == pytest.approx(fit)


def test_progress_bar_and_cancel_button_keep_computed_masks(
    qtbot, settings, recovery_root, video_path
):
    from conftest import make_window

    window = make_window(qtbot, settings, recovery_root, frame_delay=0.05)
    try:
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            window.open_video(str(video_path))
        with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
            click_frame(window, 40, 50)
        obj = _only_object(window.document)
        window.propagate("forward")
        assert window.progress.isVisible()
        qtbot.waitUntil(lambda: window.progress.bar.value() >= 3, timeout=5000)
        # A rate once frames that cost what the rest will are measured (app.headless.eta).
        qtbot.waitUntil(lambda: "frames/s ·" in window.progress.rate.text(), timeout=5000)
        assert "ETA" in window.progress.rate.text()
        with qtbot.waitSignal(window.client.propagation_finished, timeout=5000) as blocker:
            qtbot.mouseClick(window.progress.cancel, Qt.MouseButton.LeftButton)
        summary = blocker.args[0]
        assert summary.cancelled and 3 <= summary.frames < NUM_FRAMES
        assert not window.progress.isVisible()
        track = window.document.state_track(obj)
        assert (track[: summary.frames] == MaskState.MASK).all()
        assert (track[summary.frames :] == MaskState.NONE).all()
    finally:
        window.close()


def test_space_drag_pans_without_prompting(qtbot, opened):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    canvas = opened.canvas
    canvas.zoom_by(4)
    v = canvas.verticalScrollBar().value()
    viewport = canvas.viewport()
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    QTest.mousePress(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 200)
    )
    QTest.mouseMove(viewport, QPoint(200, 140))
    QTest.mouseRelease(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 140)
    )
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.verticalScrollBar().value() != v
    assert opened.document.objects() == []
