"""The frame canvas's input: the mouse, the keys and the prompt and brush tools.

Left click adds a positive point, right click or Shift+click a negative one, a left drag
draws a box, Ctrl/Alt+click removes the nearest point. The wheel zooms around the
cursor; the middle button, or Space held, pans. Scene coordinates are video pixels.

With the brush or eraser tool a left drag paints (a right drag does the opposite), shown
by a circle cursor of the brush's size; Ctrl+wheel changes the size and Esc goes back to
points. The canvas only reports the stroke; the canvas controller edits the mask.
With the find-similar tool a drag reports an exemplar box (left: like it; right or
Shift: not like it) for the Find controller (app/gui/find/), and `click_filter` lets it
take clicks on the proposals it shows before they become points.
What the canvas shows (frame, overlays, marks, notes) is drawn by its base class,
`FrameView` in app/gui/canvas/frame_view.py, with the brush's views from
app/gui/canvas/brush_view.py:
the canvas owns its views, and they never import it back. `ToolActions` ties the V, B and
E actions to the canvas's tool.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import QWidget

from app.gui.canvas.brush import DEFAULT_RADIUS, Tool, clamp_radius
from app.gui.canvas.frame_view import FrameView

# A press that moves less than this many screen pixels is a click, not a box.
DRAG_THRESHOLD = 6
ZOOM_STEP = 1.25
RADIUS_STEP = 1.15


class FrameCanvas(FrameView):
    """The frame view with its input: reports points, boxes and strokes as signals."""

    point_added = Signal(float, float, int)
    box_drawn = Signal(float, float, float, float)
    point_removal_requested = Signal(float, float)
    stroke_started = Signal(float, float, bool)  # x, y, erase
    stroke_moved = Signal(float, float)
    stroke_finished = Signal()
    exemplar_drawn = Signal(float, float, float, float, bool)  # x0, y0, x1, y1, positive
    tool_changed = Signal(object)
    brush_radius_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._press: QPoint | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._pan_from: QPoint | None = None
        self._space_down = False
        self._tool = Tool.POINT
        self._radius = DEFAULT_RADIUS
        self._stroking = False
        # (x, y, secondary) -> True when a click was taken (a proposal accepted or rejected).
        self.click_filter: Callable[[float, float, bool], bool] | None = None

    # ---- wheel -----------------------------------------------------------------------------
    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120
        if not steps:
            return
        if self._tool.paints and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            grown = clamp_radius(self._radius * RADIUS_STEP**steps)
            # Small brushes still change by at least one pixel per wheel step.
            self.set_brush_radius(grown if grown != self._radius else self._radius + np.sign(steps))
            return
        self.zoom_by(ZOOM_STEP**steps)

    # ---- tools -----------------------------------------------------------------------------
    @property
    def tool(self) -> Tool:
        return self._tool

    def set_tool(self, tool: Tool) -> None:
        if tool is self._tool:
            return
        if self._stroking:
            self._stroking = False
            self.stroke_finished.emit()
        self._tool = tool
        if tool.paints:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            self._cursor.hide()
            self.viewport().unsetCursor()
            if tool is Tool.FIND_SIMILAR:
                self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self._tool_note.show_for(self._tool, self._radius)
        self.tool_changed.emit(tool)

    @property
    def brush_radius(self) -> int:
        return self._radius

    def set_brush_radius(self, radius: float) -> None:
        radius = clamp_radius(radius)
        if radius == self._radius:
            return
        self._radius = radius
        if self._cursor.is_visible():
            centre = self._cursor.rect().center()
            self._cursor.move_to(centre.x(), centre.y(), radius)
        self._tool_note.show_for(self._tool, self._radius)
        self.brush_radius_changed.emit(radius)

    # ---- keys ------------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        # Esc leaves the brush before it reaches the Cancel shortcut (which stops tracking).
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and self._tool.paints
            and event.key() == Qt.Key.Key_Escape
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape and self._tool.paints:
            self.set_tool(Tool.POINT)
            return
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    # ---- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position().toPoint()
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space_down and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = pos
            return
        if self._tool.paints:
            self._start_stroke(pos, event.button())
            return
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            self._press = pos
            self._press_button = event.button()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position().toPoint()
        if self._pan_from is not None:
            self._pan_by(pos - self._pan_from)
            self._pan_from = pos
            return
        if self._tool.paints:
            p = self.mapToScene(pos)
            self._cursor.move_to(p.x(), p.y(), self._radius)
            if self._stroking:
                self.stroke_moved.emit(p.x(), p.y())
            return
        boxes = self._press_button == Qt.MouseButton.LeftButton or self._tool is Tool.FIND_SIMILAR
        dragging = self._press is not None and boxes
        if dragging and (pos - self._press).manhattanLength() >= DRAG_THRESHOLD:
            self._show_rubber(self._press, pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position().toPoint()
        if self._pan_from is not None:
            self._pan_from = None
            return
        if self._stroking:
            self._stroking = False
            self.stroke_finished.emit()
            return
        if self._press is None:
            return
        start, button = self._press, self._press_button
        self._press = None
        self._hide_rubber()
        dragged = (pos - start).manhattanLength() >= DRAG_THRESHOLD
        if dragged and self._tool is Tool.FIND_SIMILAR:
            secondary = button == Qt.MouseButton.RightButton
            self._emit_box(start, pos, exemplar=not (secondary or _shifted(event.modifiers())))
        elif dragged and button == Qt.MouseButton.LeftButton:
            self._emit_box(start, pos)
        else:
            self._emit_click(pos, button, event.modifiers())

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._cursor.hide()
        super().leaveEvent(event)

    def _start_stroke(self, pos: QPoint, button: Qt.MouseButton) -> None:
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        p = self.mapToScene(pos)
        if not self.scene().sceneRect().contains(p) or not self._has_frame():
            return
        self._stroking = True
        # The right button does the other tool's job, so a slip is fixed without switching.
        erase = (self._tool is Tool.ERASER) != (button == Qt.MouseButton.RightButton)
        self.stroke_started.emit(p.x(), p.y(), erase)

    def _emit_box(self, a: QPoint, b: QPoint, *, exemplar: bool | None = None) -> None:
        """A prompt box, or with `exemplar` (True: positive) an exemplar box."""
        bounds = self.scene().sceneRect()
        rect = QRectF(self.mapToScene(a), self.mapToScene(b)).normalized().intersected(bounds)
        if rect.width() < 1 or rect.height() < 1:
            return
        corners = (rect.left(), rect.top(), rect.right(), rect.bottom())
        if exemplar is None:
            self.box_drawn.emit(*corners)
        else:
            self.exemplar_drawn.emit(*corners, exemplar)

    def _emit_click(self, pos: QPoint, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> None:
        p = self.mapToScene(pos)
        if not self.scene().sceneRect().contains(p):
            return
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.point_removal_requested.emit(p.x(), p.y())
            return
        negative = button == Qt.MouseButton.RightButton or _shifted(mods)
        if self.click_filter is not None and self.click_filter(p.x(), p.y(), negative):
            return
        if self._tool is not Tool.FIND_SIMILAR:
            self.point_added.emit(p.x(), p.y(), 0 if negative else 1)


def _shifted(mods: Qt.KeyboardModifier) -> bool:
    return bool(mods & Qt.KeyboardModifier.ShiftModifier)


class ToolActions:
    """Ties the checkable tool actions (V, B, E) to the canvas's tool.

    B or E again goes back to points, so one key toggles a tool on and off."""

    def __init__(self, canvas: FrameCanvas, actions: dict[Tool, QAction]) -> None:
        self._canvas, self._actions = canvas, actions
        for tool, action in actions.items():
            action.triggered.connect(lambda _=False, t=tool: self._on_triggered(t))
        canvas.tool_changed.connect(lambda _tool: self._sync())
        self._sync()

    def _on_triggered(self, tool: Tool) -> None:
        self._canvas.set_tool(Tool.POINT if self._canvas.tool is tool else tool)
        self._sync()

    def _sync(self) -> None:
        # Qt flips a checkable action on every trigger; the canvas's tool is the truth.
        for tool, action in self._actions.items():
            action.setChecked(tool is self._canvas.tool)
