"""The frame ruler under the timeline rows: painted ticks, and seeking by click and drag."""

from __future__ import annotations

from conftest import NUM_FRAMES
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from app.gui.timeline.ruler import tick_step

LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier


def test_tick_step_keeps_numbers_apart():
    assert tick_step(20, 900) == 2  # 45 px a frame: every other frame is 90 px apart
    assert tick_step(20, 2000) == 1
    assert tick_step(100_000, 800) == 10_000
    assert tick_step(300, 800) == 50
    assert tick_step(0, 800) == 1


def test_ruler_fills_the_space_under_the_rows_and_is_painted(qtbot, opened):
    tracks = opened.tracks
    ruler = tracks.ruler_rect()
    # The rows widget reaches the bottom of its scroll area: no dead strip below it.
    viewport = tracks.parentWidget()
    qtbot.waitUntil(lambda: tracks.height() >= viewport.height())
    assert ruler.bottom() <= tracks.height()
    image = tracks.grab().toImage()
    ratio = image.width() / tracks.width()
    tick_y = round((ruler.top() + 2) * ratio)
    tick = image.pixelColor(round(tracks.x_of(0) * ratio), tick_y)
    between = image.pixelColor(round((tracks.x_of(0) + tracks.x_of(1)) / 2 * ratio), tick_y)
    assert tick.lightness() > between.lightness() + 40, (tick.name(), between.name())
    assert between == QColor(30, 31, 34)


def test_ruler_click_and_drag_seek(qtbot, opened):
    tracks, doc = opened.tracks, opened.document
    y = round(tracks.ruler_rect().center().y())
    QTest.mouseClick(tracks, LEFT, NO_MODS, QPoint(round(tracks.x_of(15)), y))
    assert doc.current_frame == 15
    QTest.mousePress(tracks, LEFT, NO_MODS, QPoint(round(tracks.x_of(3)), y))
    assert doc.current_frame == 3
    QTest.mouseMove(tracks, QPoint(round(tracks.x_of(8)), y))
    assert doc.current_frame == 8
    QTest.mouseMove(tracks, QPoint(tracks.width() + 50, y))  # past the end: the last frame
    assert doc.current_frame == NUM_FRAMES - 1
    QTest.mouseRelease(tracks, LEFT, NO_MODS, QPoint(tracks.width() + 50, y))


def test_click_below_the_ruler_seeks_too(qtbot, opened):
    tracks, doc = opened.tracks, opened.document
    qtbot.waitUntil(lambda: tracks.height() > tracks.ruler_rect().bottom() + 4)
    y = round(tracks.ruler_rect().bottom() + 3)
    QTest.mouseClick(tracks, LEFT, NO_MODS, QPoint(round(tracks.x_of(11)), y))
    assert doc.current_frame == 11
