"""Brush and eraser on the canvas, and undo freshness, with real mouse, wheel and key events."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import HEIGHT, WIDTH, click_frame, make_window
from fake_engine import MaskPrompt, MaskSession, disc, fake_engine
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui.canvas.brush import Tool
from app.gui.canvas.overlay import compose_overlay
from app.gui.document.annotations import MaskState
from app.project.mask_codec import decode_rle

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NO_MODS = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def sessions() -> list[MaskSession]:
    return []


@pytest.fixture
def window(qtbot, settings, recovery_root, sessions):
    def open_session(_model, source, device):
        sessions.append(MaskSession(source, device))
        return sessions[-1]

    engine = replace(fake_engine(), open_session=open_session, make_prompt=MaskPrompt)
    w = make_window(qtbot, settings, recovery_root, engine=engine)
    yield w
    w.close()


@pytest.fixture
def opened(qtbot, window, video_path):
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        assert window.open_video(str(video_path))
    window.canvas.setFocus()
    return window


def stroke(window, points, button=LEFT, *, release=True) -> None:
    """Press at the first video pixel, move through the others, release at the last."""
    viewport, canvas = window.canvas.viewport(), window.canvas
    at = [canvas.viewport_pos(x, y) for x, y in points]
    QTest.mousePress(viewport, button, NO_MODS, at[0])
    for pos in at[1:]:
        QTest.mouseMove(viewport, pos)
    if release:
        QTest.mouseRelease(viewport, button, NO_MODS, at[-1])


def wheel(window, steps: int, mods=NO_MODS) -> None:
    viewport = window.canvas.viewport()
    pos = QPointF(viewport.rect().center())
    event = QWheelEvent(
        pos,
        viewport.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        mods,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def line_mask(x0: int, x1: int, y: int, r: int) -> np.ndarray:
    """What a horizontal brush stroke of radius r covers: a capsule."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    dx = np.clip(xx, x0, x1) - xx
    return dx**2 + (yy - y) ** 2 <= r * r


def only_object(doc) -> int:
    assert len(doc.objects()) == 1
    return doc.objects()[0].obj_id


def test_keys_switch_tools_and_the_toolbar_shows_which(qtbot, opened):
    canvas, actions = opened.canvas, opened.actions
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert canvas.tool is Tool.BRUSH and actions.brush_tool.isChecked()
    assert not actions.point_tool.isChecked()
    qtbot.keyClick(canvas, Qt.Key.Key_B)  # B again: back to points
    assert canvas.tool is Tool.POINT and actions.point_tool.isChecked()
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    assert canvas.tool is Tool.ERASER and actions.eraser_tool.isChecked()
    assert "Eraser" in canvas._tool_note.text() and canvas._tool_note.isVisible()
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert canvas.tool is Tool.POINT and not canvas._tool_note.isVisible()
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    qtbot.keyClick(canvas, Qt.Key.Key_V)
    assert canvas.tool is Tool.POINT and not actions.eraser_tool.isChecked()


def test_ctrl_wheel_sizes_the_brush_and_the_circle_follows_and_zooms(qtbot, opened):
    canvas = opened.canvas
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    QTest.mouseMove(canvas.viewport(), canvas.viewport_pos(80, 60))
    ring = canvas.brush_cursor_rect()
    assert ring is not None and ring.center().x() == pytest.approx(80, abs=1)
    r0, zoom0 = canvas.brush_radius, canvas.zoom
    assert ring.width() == pytest.approx(2 * r0)
    wheel(opened, 2, CTRL)
    assert canvas.brush_radius > r0 and canvas.zoom == zoom0
    assert canvas.brush_cursor_rect().width() == pytest.approx(2 * canvas.brush_radius)
    r1 = canvas.brush_radius
    wheel(opened, -1, CTRL)
    assert canvas.brush_radius < r1
    # Plain wheel still zooms; the circle is in video pixels so it grows on screen.
    wheel(opened, 1)
    assert canvas.zoom > zoom0 and canvas.brush_radius < r1


def test_brush_stroke_becomes_a_mask_prompt_in_one_undo_step(qtbot, opened, sessions):
    doc = opened.document
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    obj = only_object(doc)
    clicked = doc.mask(0, obj).copy()
    depth = opened.undo_stack.count()
    qtbot.keyClick(opened.canvas, Qt.Key.Key_B)
    r = opened.canvas.brush_radius
    stroke(opened, [(60, 90), (90, 90), (120, 90)], release=False)
    # Live: the overlay shows the stroke before release, and nothing is sent yet.
    live = opened.canvas._live
    assert live is not None and live.rgba[90, 100, 3] > 0 and live.rgba[90, 20, 3] == 0
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        QTest.mouseRelease(
            opened.canvas.viewport(), LEFT, NO_MODS, opened.canvas.viewport_pos(120, 90)
        )
    assert opened.canvas._live is None
    expected = clicked | line_mask(60, 120, 90, r)
    # The overlay kept from the live stroke is the one a full compose gives.
    color = doc.object(obj).color
    full = compose_overlay(doc.video_size, [(expected, color)], opacity=opened.canvas_ctl.opacity)
    assert np.array_equal(opened.canvas_ctl._shown[1], full)
    prompts = doc.prompts(0, obj)
    assert prompts.points == () and prompts.box is None
    assert np.array_equal(decode_rle(prompts.mask, doc.video_size), expected)
    assert np.array_equal(doc.mask(0, obj), expected)
    sent = [c for c in sessions[-1].calls if c[0] == "add_mask"]
    assert len(sent) == 1 and np.array_equal(sent[0][3], expected)
    assert opened.undo_stack.count() == depth + 1
    # One Ctrl+Z brings back the click and its mask together, before the engine answers.
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL)
    assert doc.prompts(0, obj).mask is None and len(doc.prompts(0, obj).points) == 1
    assert np.array_equal(doc.mask(0, obj), clicked)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(doc.mask(0, obj), expected)
    qtbot.waitUntil(lambda: not opened.client.is_busy, timeout=5000)


def test_first_stroke_creates_the_object_and_one_undo_removes_it(qtbot, opened):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_B)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(30, 30), (50, 40)])
    obj = only_object(doc)
    assert doc.active_object == obj and doc.mask(0, obj)[35, 40]
    assert opened.undo_stack.count() == 1
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL)
    assert doc.objects() == []
    qtbot.waitUntil(lambda: not opened.client.is_busy, timeout=5000)


def test_fast_stroke_is_continuous_when_zoomed_in(qtbot, opened):
    doc = opened.document
    canvas = opened.canvas
    canvas.zoom_by(4.0)
    canvas.centerOn(80, 60)
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    wheel(opened, -20, CTRL)  # down to the smallest brush
    assert canvas.brush_radius == 1
    # Two mouse events 40 video px (160 screen px) apart: the line between is painted.
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(60, 60), (100, 60)])
    mask = doc.mask(0, only_object(doc))
    assert mask[60, 60:101].all() and mask.sum() <= 3 * 45


def test_eraser_removes_pixels_and_erasing_all_clears_the_frame(qtbot, opened):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_B)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(40, 60), (100, 60)])
    obj = only_object(doc)
    painted = doc.mask(0, obj).copy()
    qtbot.keyClick(opened.canvas, Qt.Key.Key_E)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(70, 40), (70, 80)])
    mask = doc.mask(0, obj)
    assert not mask[60, 70] and mask[60, 45] and mask[60, 95]
    assert np.array_equal(decode_rle(doc.prompts(0, obj).mask, doc.video_size), mask)
    after_one = mask.copy()
    # Erase the rest: no mask prompt is left, so the object has no prompts on the frame.
    wheel(opened, 20, CTRL)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(30, 60), (110, 60)])
    assert doc.prompts(0, obj).is_empty() and doc.mask_state(0, obj) == MaskState.NONE
    assert doc.keyframes(obj) == []
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(doc.mask(0, obj), after_one) and doc.keyframes(obj) == [0]
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(doc.mask(0, obj), painted)
    qtbot.waitUntil(lambda: not opened.client.is_busy, timeout=5000)


def test_right_drag_with_the_brush_erases(qtbot, opened):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_B)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(40, 60), (100, 60)])
    obj = only_object(doc)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(70, 40), (70, 80)], RIGHT)
    assert not doc.mask(0, obj)[60, 70] and doc.mask(0, obj)[60, 50]


def test_eraser_without_an_object_says_what_to_do(qtbot, opened):
    qtbot.keyClick(opened.canvas, Qt.Key.Key_E)
    stroke(opened, [(40, 60), (60, 60)])
    assert opened.document.objects() == [] and opened.undo_stack.count() == 0
    assert "Select an object" in opened.statusBar().currentMessage()


def test_propagation_carries_the_painted_mask(qtbot, opened, sessions):
    doc = opened.document
    qtbot.keyClick(opened.canvas, Qt.Key.Key_B)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        stroke(opened, [(40, 50), (60, 50)])
    obj = only_object(doc)
    painted = doc.mask(0, obj).copy()
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_T)
    # The fake tracks the mask prompt's centroid (50, 50), 2 px right per frame.
    assert doc.mask_state(10, obj) == MaskState.MASK
    assert doc.mask(10, obj)[50, 70] and not doc.mask(10, obj)[50, 45]
    assert np.array_equal(doc.mask(0, obj), painted)
    assert [c[1] for c in sessions[-1].calls if c[0] == "add_mask"] == [0]


def test_undo_shows_the_earlier_mask_before_the_engine_answers(
    qtbot, settings, recovery_root, video_path
):
    """Item 8: with an engine taking 0.6 s per prompt, undoing the second click shows the
    first click's mask at once, not the undone two-click mask until the engine answers."""
    window = make_window(qtbot, settings, recovery_root, fail=lambda _what: time.sleep(0.6))
    try:
        doc = window.document
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            assert window.open_video(str(video_path))
        with qtbot.waitSignal(window.client.mask_ready, timeout=10000):
            click_frame(window, 40, 50)
        obj = only_object(doc)
        first = doc.mask(0, obj).copy()
        ((x, y, _),) = doc.prompts(0, obj).points
        assert np.array_equal(first, disc(doc.video_size, x, y))
        with qtbot.waitSignal(window.client.mask_ready, timeout=10000):
            click_frame(window, 80, 50)
        assert doc.mask(0, obj)[50, 60] and not first[50, 60]
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
        assert window.client.is_busy  # the engine is still working on the restored click
        assert np.array_equal(doc.mask(0, obj), first)
        with qtbot.waitSignal(window.client.mask_ready, timeout=10000):
            pass
        assert np.array_equal(doc.mask(0, obj), first)
    finally:
        qtbot.waitUntil(lambda: not window.client.is_busy, timeout=10000)
        window.close()
