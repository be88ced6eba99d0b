"""Confidence on the timeline and doubtful-frame navigation (Qt side of app/project/quality.py).

Each timeline row gets a thin strip under its mask spans: green where the engine's
predicted IoU is at or over the threshold, a warning colour under it, nothing where it is
unknown (masks the user made); red ticks on top mark drift. At more frames than pixels,
each pixel column shows the worst of its frames (lowest confidence, any drift), so a lone
bad frame in a 10,000-frame video still shows.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QInputDialog, QStatusBar, QWidget

from app.gui.document.annotations import AnnotationDocument
from app.gui.settings import AppSettings
from app.project.quality import AREA, IOU, QualityTable, doubtful_any, next_doubtful

STRIP_HEIGHT = 3
GOOD_COLOR = QColor(70, 175, 110)
LOW_COLOR = QColor(255, 150, 20)
DRIFT_COLOR = QColor(255, 70, 70)
TICK_OUTLINE = QColor(15, 15, 18)
_UNKNOWN, _GOOD, _LOW = 0, 1, 2


def confidence_codes(table: QualityTable, obj_id: int, n: int, threshold: float) -> np.ndarray:
    """(n,) int8 per frame: 0 no figure (or no mask), 1 at or over threshold, 2 under it."""
    iou = table.column(obj_id, IOU, n)
    known = (table.column(obj_id, AREA, n) > 0) & np.isfinite(iou)
    codes = np.zeros(n, dtype=np.int8)
    codes[known] = _GOOD
    codes[known & (iou < threshold)] = _LOW
    return codes


def worst_per_column(values: np.ndarray, columns: int) -> np.ndarray:
    """Max of `values` per pixel column when there are more frames than columns."""
    if values.size <= columns:
        return values
    edges = np.linspace(0, values.size, columns + 1).astype(np.int64)[:-1]
    return np.maximum.reduceat(values, edges)


def paint_confidence(
    painter: QPainter,
    rect: QRectF,
    table: QualityTable,
    obj_id: int,
    n: int,
    threshold: float,
) -> None:
    """The strip and drift ticks of one object's row; `rect` spans the frames only."""
    columns = max(int(rect.width()), 1)
    codes = worst_per_column(confidence_codes(table, obj_id, n, threshold), columns)
    unit = rect.width() / codes.size
    top = rect.bottom() - STRIP_HEIGHT
    for code, color in ((_GOOD, GOOD_COLOR), (_LOW, LOW_COLOR)):
        for start, stop in _runs(codes == code):
            x0 = rect.left() + start * unit
            painter.fillRect(QRectF(x0, top, max((stop - start) * unit, 1.0), STRIP_HEIGHT), color)
    drift = worst_per_column(table.drift(obj_id, n).astype(np.int8), columns)
    # A dark outline keeps the tick visible on a row whose object colour is red too.
    painter.setBrush(DRIFT_COLOR)
    painter.setPen(QPen(TICK_OUTLINE, 1))
    y = rect.top()
    for i in np.flatnonzero(drift):
        cx = rect.left() + (i + 0.5) * unit
        painter.drawPolygon([QPointF(cx - 4, y), QPointF(cx + 4, y), QPointF(cx, y + 6)])


def _runs(hit: np.ndarray) -> np.ndarray:
    padded = np.concatenate(([False], hit, [False]))
    return np.flatnonzero(padded[1:] != padded[:-1]).reshape(-1, 2)


class DoubtfulNavigator(QObject):
    """Next / previous doubtful frame for the active object (any object when none is),
    and the IoU threshold, persisted in the settings."""

    threshold_changed = Signal(float)

    def __init__(
        self,
        document: AnnotationDocument,
        settings: AppSettings,
        status: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._settings = settings
        self._status = status
        # "No more … after this one" is about the frame and object it was said on: moving
        # away (or choosing another object) makes it untrue, so it goes then.
        self._no_more: str | None = None
        document.current_frame_changed.connect(self._withdraw_no_more)
        document.active_object_changed.connect(self._withdraw_no_more)

    @property
    def threshold(self) -> float:
        return self._settings.doubtful_threshold

    def set_threshold(self, value: float) -> None:
        self._settings.doubtful_threshold = value
        self.threshold_changed.emit(self.threshold)

    def ask_threshold(self, parent: QWidget) -> None:
        value, ok = QInputDialog.getDouble(
            parent,
            "Doubtful threshold",
            "Frames whose predicted IoU is under this are doubtful:",
            self.threshold,
            0.0,
            1.0,
            2,
        )
        if ok:
            self.set_threshold(value)
            self._status.showMessage(f"Doubtful frames: predicted IoU under {value:.2f}", 4000)

    def doubtful_frames(self) -> np.ndarray:
        doc, table = self._doc, self._doc.store.quality
        ids = table.object_ids() if doc.active_object is None else [doc.active_object]
        return doubtful_any(table, ids, doc.num_frames, self.threshold)

    def jump(self, direction: int) -> int | None:
        """Go to the next (direction > 0) or previous doubtful frame; None when there is none."""
        doc = self._doc
        target = next_doubtful(self.doubtful_frames(), doc.current_frame, direction)
        if target is None:
            where = "after" if direction > 0 else "before"
            whose = "" if doc.active_object is None else f" of {doc.object(doc.active_object).name}"
            self._no_more = f"No more doubtful frames{whose} {where} this one"
            self._status.showMessage(self._no_more, 4000)
            return None
        doc.set_current_frame(target)
        return target

    def _withdraw_no_more(self, _value: int) -> None:
        if self._no_more is not None and self._status.currentMessage() == self._no_more:
            self._status.clearMessage()
        self._no_more = None
