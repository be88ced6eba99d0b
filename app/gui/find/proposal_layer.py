"""Proposals and exemplar boxes drawn over the frame canvas.

Each proposal is outlined in a neutral colour (the objects' palette is saturated, so a
proposal never reads as an object) with a tag giving its score, and "overlaps OBJECT"
when it covers an object of the frame (then dashed: Accept all leaves it). Exemplar boxes
are green (like this) or red (not like this) until the review ends. Outlines are the
masks' outer contours (OpenCV), in video pixels, so they follow the zoom.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.gui.find.review import Proposal

OUTLINE = QColor(240, 240, 240)
OVERLAP_OUTLINE = QColor(170, 170, 170)
SELECTED_OUTLINE = QColor(255, 255, 140)
POSITIVE_EXEMPLAR = QColor(60, 220, 90)
NEGATIVE_EXEMPLAR = QColor(240, 70, 70)
_Z = 2.5  # over the mask overlay and the prompt marks


@dataclass(frozen=True)
class ShownProposal:
    """A proposal as drawn: with the object it overlaps ("" for none), and whether it is
    the one selected in the list."""

    proposal: Proposal
    overlaps: str = ""
    selected: bool = False

    @property
    def tag(self) -> str:
        score = f"{self.proposal.score:.2f}"
        return f"{score} · overlaps {self.overlaps}" if self.overlaps else score


def outline_path(proposal: Proposal) -> QPainterPath:
    """The outer contours of a proposal's mask, in video pixels."""
    mask = proposal.mask
    contours, _ = cv2.findContours(
        mask.crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    path = QPainterPath()
    for contour in contours:
        points = [QPointF(mask.x0 + x + 0.5, mask.y0 + y + 0.5) for x, y in contour[:, 0]]
        if len(points) > 1:
            path.addPolygon(QPolygonF([*points, points[0]]))
    return path


class _Tag(QGraphicsItem):
    """A small dark label of constant screen size, anchored at a video pixel."""

    def __init__(self, text: str, color: QColor) -> None:
        super().__init__()
        self._text, self._color = text, color
        self._font = QFont()
        self._font.setPointSizeF(8.5)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        width = 8 * len(self._text) + 12
        return QRectF(0, 0, width, 18)

    def paint(
        self, painter: QPainter, _option: QStyleOptionGraphicsItem, _widget: QWidget | None = None
    ) -> None:
        painter.setFont(self._font)
        rect = painter.fontMetrics().boundingRect(self._text).adjusted(-4, -2, 4, 2)
        rect.moveTopLeft(QPointF(0, 0).toPoint())  # inside the frame, even at its top edge
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 200))
        painter.drawRoundedRect(rect, 3, 3)
        painter.setPen(self._color)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._text)


class ProposalLayer:
    """Owns the scene items of the proposals and exemplars on show."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self._scene = scene
        self._items: list[QGraphicsItem] = []

    def show(
        self, proposals: list[ShownProposal], exemplars: list[tuple[tuple[float, ...], bool]]
    ) -> None:
        self.clear()
        for shown in proposals:
            self._add_proposal(shown)
        for box, positive in exemplars:
            self._add_exemplar(box, positive)

    def clear(self) -> None:
        for item in self._items:
            self._scene.removeItem(item)
        self._items = []

    @property
    def item_count(self) -> int:
        return len(self._items)

    def _add_proposal(self, shown: ShownProposal) -> None:
        color = OVERLAP_OUTLINE if shown.overlaps else OUTLINE
        color = SELECTED_OUTLINE if shown.selected else color
        item = QGraphicsPathItem(outline_path(shown.proposal))
        pen = QPen(color, 3 if shown.selected else 2)
        pen.setCosmetic(True)
        if shown.overlaps:
            pen.setStyle(Qt.PenStyle.DashLine)
        item.setPen(pen)
        item.setBrush(QBrush(QColor(255, 255, 255, 28)))
        self._keep(item)
        mask = shown.proposal.mask  # tagged where its outline is (the box may stray from it)
        tag = _Tag(shown.tag, color)
        tag.setPos(mask.x0, mask.y0)
        self._keep(tag)

    def _add_exemplar(self, box: tuple[float, ...], positive: bool) -> None:
        x0, y0, x1, y1 = box
        rect = QGraphicsRectItem(QRectF(QPointF(x0, y0), QPointF(x1, y1)))
        color = POSITIVE_EXEMPLAR if positive else NEGATIVE_EXEMPLAR
        pen = QPen(color, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        rect.setPen(pen)
        self._keep(rect)
        tag = _Tag("like this" if positive else "not like this", color)
        tag.setPos(x0, y0)
        self._keep(tag)

    def _keep(self, item: QGraphicsItem) -> None:
        item.setZValue(_Z)
        self._scene.addItem(item)
        self._items.append(item)
