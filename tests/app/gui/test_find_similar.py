"""The find-similar tool (S): a box around one instance finds others like it, a right-drag or
Shift+drag box is a negative example, exemplars and the bar's phrase go in one Find."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import drag_box
from find_helpers import RECTS, finding_window, names, rows
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.gui.canvas.brush import Tool


@pytest.fixture
def finding(qtbot, settings, recovery_root, video_path):
    yield from finding_window(qtbot, settings, recovery_root, video_path)


def drag(window, x0, y0, x1, y1, button, mods=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = window.canvas.viewport()
    a, b = window.canvas.viewport_pos(x0, y0), window.canvas.viewport_pos(x1, y1)
    QTest.mousePress(viewport, button, mods, a)
    QTest.mouseMove(viewport, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, button, mods, b)


def last_call(window) -> dict:
    return window.finder_calls[0].calls[-1]


def test_exemplar_boxes_find_similar_ones_and_combine_with_the_phrase(qtbot, finding):
    finding.canvas.setFocus()
    qtbot.keyClick(finding.canvas, Qt.Key.Key_S)
    assert finding.canvas.tool is Tool.FIND_SIMILAR
    assert finding.actions.find_similar_tool.isChecked()
    with qtbot.waitSignal(finding.client.find_ready, timeout=20000):
        drag_box(finding, 58, 6, 92, 32)  # around the second rectangle: like this
    call = last_call(finding)
    assert call["phrase"] is None and call["labels"].tolist() == [True]
    np.testing.assert_allclose(call["boxes"], [[58, 6, 92, 32]], atol=1)
    assert len(rows(finding)) == 3 and names(finding) == []  # the drag drew no prompt box
    layer = finding.find_controller.layer
    assert layer.item_count == 3 * 2 + 2  # three proposals, one exemplar (box and tag)

    with qtbot.waitSignal(finding.client.find_ready, timeout=20000):
        drag(finding, 108, 68, 142, 102, Qt.MouseButton.RightButton)  # not like this
    assert last_call(finding)["labels"].tolist() == [True, False]
    with qtbot.waitSignal(finding.client.find_ready, timeout=20000):
        drag(finding, 18, 78, 52, 112, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier)
    assert last_call(finding)["labels"].tolist() == [True, False, False]
    assert layer.item_count == 3 * 2 + 3 * 2

    qtbot.keyClick(finding.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(finding.find_controller.bar.phrase, "wheel")
    with qtbot.waitSignal(finding.client.find_ready, timeout=20000):
        qtbot.keyClick(finding.find_controller.bar.phrase, Qt.Key.Key_Return)
    call = last_call(finding)
    assert call["phrase"] == "wheel" and call["labels"].tolist() == [True, False, False]
    assert len(finding.finder_calls[0].calls) == 4

    qtbot.keyClick(finding.find_controller.list.rows, Qt.Key.Key_Return)  # accept all
    assert names(finding) == ["wheel 1", "wheel 2", "wheel 3"]
    assert finding.find_controller.exemplars == [] and layer.item_count == 0


def test_a_click_with_the_tool_adds_no_point(qtbot, finding):
    finding.canvas.setFocus()
    qtbot.keyClick(finding.canvas, Qt.Key.Key_S)
    QTest.mouseClick(
        finding.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        finding.canvas.viewport_pos(*RECTS[3][:2]),
    )
    assert finding.document.objects() == [] and finding.finder_calls[0].calls == []
    qtbot.keyClick(finding.canvas, Qt.Key.Key_V)
    assert finding.canvas.tool is Tool.POINT and not finding.actions.find_similar_tool.isChecked()
