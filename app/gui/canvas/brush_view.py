"""What the brush puts on the canvas: the live overlay of a stroke and the circle cursor.

The live overlay shows an RGBA NumPy buffer through a QImage that shares its memory, and
repaints only the rectangle a mouse event touched. Swapping a QPixmap instead would copy
the whole frame per event (33 MB on a 4K frame), far over a 16 ms frame budget.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsScene,
    QLabel,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.gui.canvas.brush import Rect, Tool


class LiveOverlay(QGraphicsItem):
    """Shows an (H, W, 4) uint8 RGBA buffer that is edited in place during a stroke."""

    def __init__(self, rgba: np.ndarray) -> None:
        super().__init__()
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 4) uint8 RGBA, got {rgba.shape} {rgba.dtype}")
        self.rgba = np.ascontiguousarray(rgba)
        h, w, _ = self.rgba.shape
        # Shares self.rgba's memory: edits to the array show at the next repaint.
        self._image = QImage(self.rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self._bounds = QRectF(0, 0, w, h)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def paint(  # Qt override
        self, painter: QPainter, option: QStyleOptionGraphicsItem, _widget: QWidget | None = None
    ) -> None:
        exposed = option.exposedRect.intersected(self._bounds).toAlignedRect()
        if not exposed.isEmpty():
            painter.drawImage(exposed, self._image, exposed)

    def touched(self, rect: Rect) -> None:
        """Schedule a repaint of the part of the buffer that `rect` covers."""
        x0, y0, x1, y1 = rect
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))


class BrushCursor:
    """A circle of the brush's radius around the mouse, in video pixels (so it zooms)."""

    def __init__(self, scene: QGraphicsScene) -> None:
        # A light ring over a dark one reads on bright and dark video alike.
        self._rings = [QGraphicsEllipseItem(), QGraphicsEllipseItem()]
        for ring, color, style in zip(
            self._rings,
            (QColor(0, 0, 0, 200), QColor("white")),
            (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine),
            strict=True,
        ):
            pen = QPen(color, 1.5, style)
            pen.setCosmetic(True)
            ring.setPen(pen)
            ring.setZValue(4)
            ring.setVisible(False)
            scene.addItem(ring)

    def move_to(self, x: float, y: float, radius: float) -> None:
        for ring in self._rings:
            ring.setRect(QRectF(x - radius, y - radius, 2 * radius, 2 * radius))
            ring.setVisible(True)

    def hide(self) -> None:
        for ring in self._rings:
            ring.setVisible(False)

    def is_visible(self) -> bool:
        return self._rings[0].isVisible()

    def rect(self) -> QRectF:
        return self._rings[0].rect()


class ToolNote(QLabel):
    """A note in the canvas's bottom-left corner naming the painting tool and its size, or
    how the find-similar tool works."""

    _NAMES = {Tool.BRUSH: "Brush", Tool.ERASER: "Eraser"}

    def __init__(self, viewport: QWidget) -> None:
        super().__init__(viewport)
        self.setStyleSheet(
            "background:rgba(20,20,20,210);color:white;border-radius:6px;padding:3px 8px;"
        )
        self.hide()

    def show_for(self, tool: Tool, radius: int) -> None:
        name = self._NAMES.get(tool)
        text = f"{name} {radius} px · Ctrl+wheel: size · V: points" if name else None
        if tool is Tool.FIND_SIMILAR:
            text = "Find similar: drag a box around one · right or Shift drag: not like it"
        self.setVisible(text is not None)
        if text is not None:
            self.setText(text)
            self.adjustSize()
            self.place()

    def place(self) -> None:
        self.move(10, self.parentWidget().height() - self.height() - 10)
