"""The frame canvas: the current frame, its mask overlay and prompts, and the mouse.

Left click adds a positive point, right click or Shift+click a negative one, a left drag
draws a box, Ctrl/Alt+click removes the nearest point. The wheel zooms around the
cursor; the middle button, or Space held, pans. Scene coordinates are video pixels.

With the brush or eraser tool a left drag paints (a right drag does the opposite), shown
by a circle cursor of the brush's size; Ctrl+wheel changes the size and Esc goes back to
points. The canvas only reports the stroke; the canvas controller edits the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import qtawesome
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from app.gui.brush import DEFAULT_RADIUS, Tool, clamp_radius
from app.gui.brush_view import BrushCursor, LiveOverlay, ToolNote
from app.gui.document import FramePrompts

# A press that moves less than this many screen pixels is a click, not a box.
DRAG_THRESHOLD = 6
POINT_RADIUS_PX = 6.0
ZOOM_STEP = 1.25
RADIUS_STEP = 1.15


@dataclass(frozen=True)
class PromptMarks:
    """One object's prompts on the shown frame, with how to draw them."""

    prompts: FramePrompts
    color: tuple[int, int, int]
    active: bool


class FrameCanvas(QGraphicsView):
    point_added = Signal(float, float, int)
    box_drawn = Signal(float, float, float, float)
    point_removal_requested = Signal(float, float)
    stroke_started = Signal(float, float, bool)  # x, y, erase
    stroke_moved = Signal(float, float)
    stroke_finished = Signal()
    tool_changed = Signal(object)
    brush_radius_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(30, 30, 32))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)
        self._frame_item = QGraphicsPixmapItem()
        self._overlay_item = QGraphicsPixmapItem()
        self._overlay_item.setZValue(1)
        self.scene().addItem(self._frame_item)
        self.scene().addItem(self._overlay_item)
        self._marks: list[QGraphicsItem] = []
        self._press: QPoint | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._rubber: QGraphicsRectItem | None = None
        self._pan_from: QPoint | None = None
        self._space_down = False
        self._auto_fit = True
        self._busy = _BusyNote(self.viewport())
        self._busy.hide()
        self._hint = QLabel("Open a video (Ctrl+O) or drop a video file or image folder here")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setStyleSheet("color: #8a8f98; font-size: 14px;")
        self._hint.setParent(self.viewport())
        self._tool = Tool.POINT
        self._radius = DEFAULT_RADIUS
        self._stroking = False
        self._overlays_on = True
        self._live: LiveOverlay | None = None
        self._cursor = BrushCursor(self.scene())
        self._tool_note = ToolNote(self.viewport())

    # ---- content ---------------------------------------------------------------------------
    def set_frame(self, image: QImage | None) -> None:
        self._hint.setVisible(image is None)
        if image is None:
            self._frame_item.setPixmap(QPixmap())
            self._overlay_item.setPixmap(QPixmap())
            return
        first = self._frame_item.pixmap().isNull()
        self._frame_item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(QRectF(0, 0, image.width(), image.height()))
        if first or self._auto_fit:
            self.fit_to_window()

    def set_overlay(self, image: QImage | None) -> None:
        self._overlay_item.setPixmap(QPixmap() if image is None else QPixmap.fromImage(image))

    def set_overlay_visible(self, visible: bool) -> None:
        self._overlays_on = visible
        self._overlay_item.setVisible(visible and self._live is None)

    def overlay_visible(self) -> bool:
        return self._overlays_on

    def begin_live_overlay(self, rgba: np.ndarray) -> LiveOverlay:
        """Show `rgba` in place of the overlay while a stroke edits it (shown even when
        overlays are off: the user must see what they paint)."""
        self.end_live_overlay()
        self._live = LiveOverlay(rgba)
        self._live.setZValue(1)
        self.scene().addItem(self._live)
        self._overlay_item.setVisible(False)
        return self._live

    def end_live_overlay(self) -> None:
        if self._live is not None:
            self.scene().removeItem(self._live)
            self._live = None
        self._overlay_item.setVisible(self._overlays_on)

    def set_prompts(self, marks: list[PromptMarks]) -> None:
        for item in self._marks:
            self.scene().removeItem(item)
        self._marks = []
        scale = 1.0 / max(self.transform().m11(), 1e-6)
        for mark in marks:
            self._add_marks(mark, scale)

    def _add_marks(self, mark: PromptMarks, scale: float) -> None:
        color = QColor(*mark.color)
        if mark.prompts.box is not None:
            x0, y0, x1, y1 = mark.prompts.box
            rect = QGraphicsRectItem(QRectF(QPointF(x0, y0), QPointF(x1, y1)))
            pen = QPen(color, 2 if mark.active else 1, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            rect.setPen(pen)
            self._keep(rect)
        r = POINT_RADIUS_PX * scale
        for x, y, label in mark.prompts.points:
            dot = QGraphicsEllipseItem(QRectF(x - r, y - r, 2 * r, 2 * r))
            fill = QColor(40, 200, 80) if label == 1 else QColor(230, 50, 50)
            dot.setBrush(QBrush(fill))
            pen = QPen(QColor("white") if mark.active else color, 2)
            pen.setCosmetic(True)
            dot.setPen(pen)
            self._keep(dot)

    def _keep(self, item: QGraphicsItem) -> None:
        item.setZValue(2)
        self.scene().addItem(item)
        self._marks.append(item)

    def set_busy(self, text: str | None) -> None:
        """Show a busy note (e.g. "Encoding frame 12…") in the corner, or hide it with None."""
        if text is None:
            self._busy.hide()
            return
        self._busy.text.setText(text)
        self._busy.adjustSize()
        self._busy.move(10, 10)
        self._busy.show()

    def is_busy(self) -> bool:
        return self._busy.isVisible()

    # ---- view ------------------------------------------------------------------------------
    def fit_to_window(self) -> None:
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._auto_fit = True

    def zoom_by(self, factor: float) -> None:
        self._auto_fit = False
        self.scale(factor, factor)

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def viewport_pos(self, x: float, y: float) -> QPoint:
        """The viewport pixel showing video pixel (x, y); for tests and tools."""
        return self.mapFromScene(QPointF(x, y))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._hint.setGeometry(self.viewport().rect())
        self._tool_note.place()
        if self._auto_fit:
            self.fit_to_window()

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

    def brush_cursor_rect(self) -> QRectF | None:
        """The circle cursor in video pixels while it shows; for tests and screenshots."""
        return self._cursor.rect() if self._cursor.is_visible() else None

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
            delta = pos - self._pan_from
            self._pan_from = pos
            self._auto_fit = False
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - delta.x())
            v.setValue(v.value() - delta.y())
            return
        if self._tool.paints:
            p = self.mapToScene(pos)
            self._cursor.move_to(p.x(), p.y(), self._radius)
            if self._stroking:
                self.stroke_moved.emit(p.x(), p.y())
            return
        dragging = self._press is not None and self._press_button == Qt.MouseButton.LeftButton
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
        if self._rubber is not None:
            self.scene().removeItem(self._rubber)
            self._rubber = None
        if button == Qt.MouseButton.LeftButton and (pos - start).manhattanLength() >= (
            DRAG_THRESHOLD
        ):
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
        if not self.scene().sceneRect().contains(p) or self._frame_item.pixmap().isNull():
            return
        self._stroking = True
        # The right button does the other tool's job, so a slip is fixed without switching.
        erase = (self._tool is Tool.ERASER) != (button == Qt.MouseButton.RightButton)
        self.stroke_started.emit(p.x(), p.y(), erase)

    def _show_rubber(self, a: QPoint, b: QPoint) -> None:
        rect = QRectF(self.mapToScene(a), self.mapToScene(b)).normalized()
        if self._rubber is None:
            self._rubber = QGraphicsRectItem()
            pen = QPen(QColor("white"), 1, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber.setPen(pen)
            self._rubber.setZValue(3)
            self.scene().addItem(self._rubber)
        self._rubber.setRect(rect)

    def _emit_box(self, a: QPoint, b: QPoint) -> None:
        bounds = self.scene().sceneRect()
        rect = QRectF(self.mapToScene(a), self.mapToScene(b)).normalized().intersected(bounds)
        if rect.width() >= 1 and rect.height() >= 1:
            self.box_drawn.emit(rect.left(), rect.top(), rect.right(), rect.bottom())

    def _emit_click(self, pos: QPoint, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> None:
        p = self.mapToScene(pos)
        if not self.scene().sceneRect().contains(p):
            return
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.point_removal_requested.emit(p.x(), p.y())
            return
        negative = button == Qt.MouseButton.RightButton or mods & Qt.KeyboardModifier.ShiftModifier
        self.point_added.emit(p.x(), p.y(), 0 if negative else 1)


class _BusyNote(QFrame):
    """A small dark note with an hourglass, floated over the canvas's top-left corner."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("busyNote")
        self.setStyleSheet(
            "QFrame#busyNote{background:rgba(20,20,20,210);border-radius:6px;}QLabel{color:white;}"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 10, 4)
        icon = QLabel()
        icon.setPixmap(qtawesome.icon("mdi6.timer-sand", color="white").pixmap(16, 16))
        self.text = QLabel()
        layout.addWidget(icon)
        layout.addWidget(self.text)
