"""What the frame canvas shows: the frame, its mask overlay and prompt marks, and its notes.

`FrameView` owns the scene and everything drawn in it (the frame, the overlay or a stroke's
live overlay, prompt marks, the box being dragged, the brush's circle cursor) and the notes
floated over the viewport (busy, tool, the empty-canvas hint), plus fit and zoom. Scene
coordinates are video pixels. It interprets no input: `FrameCanvas` (app/gui/canvas/frame_canvas.py)
adds the mouse, the keys and the tools on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import qtawesome
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
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

from app.gui.canvas.brush_view import BrushCursor, LiveOverlay, ToolNote
from app.gui.document.annotations import FramePrompts

POINT_RADIUS_PX = 6.0


@dataclass(frozen=True)
class PromptMarks:
    """One object's prompts on the shown frame, with how to draw them."""

    prompts: FramePrompts
    color: tuple[int, int, int]
    active: bool


class FrameView(QGraphicsView):
    """The scene of one video frame and what is drawn over it; input is the subclass's."""

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
        self._rubber: QGraphicsRectItem | None = None
        self._auto_fit = True
        self._busy = _BusyNote(self.viewport())
        self._busy.hide()
        self._hint = QLabel("Open a video (Ctrl+O) or drop a video file or image folder here")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setStyleSheet("color: #8a8f98; font-size: 14px;")
        self._hint.setParent(self.viewport())
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

    def _has_frame(self) -> bool:
        return not self._frame_item.pixmap().isNull()

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

    def busy_text(self) -> str | None:
        """The busy note showing now; None when hidden."""
        return self._busy.text.text() if self._busy.isVisible() else None

    def brush_cursor_rect(self) -> QRectF | None:
        """The circle cursor in video pixels while it shows; for tests and screenshots."""
        return self._cursor.rect() if self._cursor.is_visible() else None

    def _show_rubber(self, a: QPoint, b: QPoint) -> None:
        """Draw the box being dragged between viewport points `a` and `b`."""
        rect = QRectF(self.mapToScene(a), self.mapToScene(b)).normalized()
        if self._rubber is None:
            self._rubber = QGraphicsRectItem()
            pen = QPen(QColor("white"), 1, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber.setPen(pen)
            self._rubber.setZValue(3)
            self.scene().addItem(self._rubber)
        self._rubber.setRect(rect)

    def _hide_rubber(self) -> None:
        if self._rubber is not None:
            self.scene().removeItem(self._rubber)
            self._rubber = None

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

    def _pan_by(self, delta: QPoint) -> None:
        """Scroll the view by `delta` screen pixels; the view no longer follows the window."""
        self._auto_fit = False
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - delta.x())
        v.setValue(v.value() - delta.y())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._hint.setGeometry(self.viewport().rect())
        self._tool_note.place()
        if self._auto_fit:
            self.fit_to_window()


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
