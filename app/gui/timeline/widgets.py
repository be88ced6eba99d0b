"""The timeline: a scrub bar with frame number and timecode, and one painted row per object.

Rows show where an object has masks, where the tracker predicted it absent, its
keyframes (prompted frames), and hatched, the masks an earlier model computed
(`app.gui.worker.model_change`). A frame ruler fills the space below the rows
(`app.gui.timeline.ruler`); a click or drag anywhere on the rows or under them seeks.
Painting works on run-length spans computed with NumPy from the document's per-object
state track, so a 100k-frame video costs a handful of rectangles per row rather than one
per frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSlider, QSpinBox, QWidget

from app.gui.document.annotations import AnnotationDocument, MaskState
from app.gui.document.stale_masks import runs
from app.gui.timeline.confidence import paint_confidence
from app.gui.timeline.ruler import RULER_HEIGHT, paint_ruler
from app.project.quality import DEFAULT_THRESHOLD

ROW_HEIGHT = 16
ROW_GAP = 3
# Left column holding each row's object name; frames are laid out to its right.
NAME_GUTTER = 90
HEADER = 6
ABSENT_COLOR = QColor(110, 110, 118)
STALE_BRUSH = QBrush(QColor(20, 20, 24, 230), Qt.BrushStyle.BDiagPattern)
_STALE_TIP = (
    "Hatched: {count} masks computed by the model loaded before; they stay until tracked "
    "again (or kept with Model > Accept Previous Model's Masks)"
)
_TIP = "Click or drag on a row or on the frame ruler to go to that frame"


def spans(track: np.ndarray, value: int) -> np.ndarray:
    """(K, 2) int start/stop (exclusive) of the runs where `track == value`."""
    return runs(track == value)


def timecode(frame: int, fps: float) -> str:
    """`HH:MM:SS.mmm`, the start time of frame `frame` at `fps`, to the millisecond.

    Milliseconds after the dot, never frames: "00:00:09.240" reads as 9.24 s and is 9.24 s.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    total_ms = round(frame * 1000 / fps)
    seconds, ms = divmod(total_ms, 1000)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}.{ms:03d}"


class TimelineTracks(QWidget):
    """Per-object rows of mask/absent spans and keyframe ticks over a frame ruler.

    It fills the height its scroll area gives it, so the space under the rows is its own:
    the ruler, and below it nothing, all of it seeking on click and drag like the rows."""

    frame_clicked = Signal(int)

    def __init__(self, document: AnnotationDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self.threshold = DEFAULT_THRESHOLD  # predicted IoU under which the strip warns
        self.setMinimumHeight(HEADER + ROW_HEIGHT + ROW_GAP + RULER_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        for signal in (document.objects_changed, document.video_changed):
            signal.connect(self._on_layout_changed)
        document.object_changed.connect(lambda _obj: self.update())
        document.masks_changed.connect(lambda _frame: self.update())
        document.prompts_changed.connect(lambda _f, _o: self.update())
        document.current_frame_changed.connect(lambda _frame: self.update())
        document.active_object_changed.connect(lambda _obj: self.update())
        document.stale_changed.connect(self.update)

    def set_threshold(self, value: float) -> None:
        self.threshold = value
        self.update()

    def _on_layout_changed(self) -> None:
        self.setMinimumHeight(round(self.ruler_rect().bottom()))
        self.update()

    def tooltip_text(self) -> str:
        count = self._doc.stale.count()
        return f"{_TIP}\n{_STALE_TIP.format(count=count)}" if count else _TIP

    def event(self, event: QEvent) -> bool:
        # Built when asked for: marks clear frame by frame while a pass runs.
        if event.type() == QEvent.Type.ToolTip:
            self.setToolTip(self.tooltip_text())
        return super().event(event)

    def _unit(self) -> float:
        """Pixels per frame; frame f spans [f * unit, (f + 1) * unit) right of the gutter."""
        return max(self.width() - NAME_GUTTER, 1) / max(self._doc.num_frames, 1)

    def frame_at(self, x: float) -> int:
        n = self._doc.num_frames
        return int(np.clip((x - NAME_GUTTER) // self._unit(), 0, max(n - 1, 0)))

    def x_of(self, frame: float) -> float:
        """The centre of a frame's slot."""
        return NAME_GUTTER + (frame + 0.5) * self._unit()

    def row_rect(self, row: int) -> QRectF:
        return QRectF(0, HEADER + row * (ROW_HEIGHT + ROW_GAP), self.width(), ROW_HEIGHT)

    def ruler_rect(self) -> QRectF:
        """The frame ruler, right under the last row."""
        rows = max(len(self._doc.objects()), 1)
        return QRectF(0, HEADER + rows * (ROW_HEIGHT + ROW_GAP), self.width(), RULER_HEIGHT)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(36, 37, 40))
        n = self._doc.num_frames
        if n == 0:
            return
        # Spans shorter than a pixel still get one pixel.
        unit = self._unit()
        for row, obj in enumerate(self._doc.objects()):
            rect = self.row_rect(row)
            active = obj.obj_id == self._doc.active_object
            painter.fillRect(rect, QColor(56, 58, 64) if active else QColor(46, 47, 52))
            track = self._doc.state_track(obj.obj_id)
            self._paint_spans(painter, rect, spans(track, MaskState.ABSENT), ABSENT_COLOR, unit)
            color = QColor(*obj.color)
            color.setAlpha(200 if obj.visible else 90)
            self._paint_spans(painter, rect, spans(track, MaskState.MASK), color, unit)
            stale = runs(self._doc.stale.track(obj.obj_id))
            self._paint_spans(painter, rect, stale, STALE_BRUSH, unit)
            frames = QRectF(NAME_GUTTER, rect.top(), n * unit, rect.height())
            quality = self._doc.store.quality
            paint_confidence(painter, frames, quality, obj.obj_id, n, self.threshold)
            self._paint_name(painter, rect, obj.name)
            self._paint_keyframes(painter, rect, self._doc.keyframes(obj.obj_id))
        paint_ruler(painter, self.ruler_rect(), n, NAME_GUTTER)
        x = self.x_of(self._doc.current_frame)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(round(x), 0, round(x), self.height())

    def _paint_spans(
        self, painter: QPainter, rect: QRectF, found: np.ndarray, fill: QColor | QBrush, unit: float
    ) -> None:
        top, height = rect.top() + 3, rect.height() - 6
        for start, stop in found:
            x0 = NAME_GUTTER + start * unit
            painter.fillRect(QRectF(x0, top, max((stop - start) * unit, 1.0), height), fill)

    def _paint_keyframes(self, painter: QPainter, rect: QRectF, frames: list[int]) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255))
        mid = rect.center().y()
        for frame in frames:
            cx = self.x_of(frame)
            diamond = [QPointF(cx, mid - 5), QPointF(cx + 4, mid), QPointF(cx, mid + 5)]
            painter.drawPolygon([*diamond, QPointF(cx - 4, mid)])

    def _paint_name(self, painter: QPainter, rect: QRectF, name: str) -> None:
        font = self.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.9, 6.0))
        painter.setFont(font)
        label = QRectF(rect.left() + 6, rect.top(), NAME_GUTTER - 10, rect.height())
        text = painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, label.width())
        painter.setPen(QColor(225, 226, 230))
        painter.drawText(label, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self._jump(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event)

    def _jump(self, event: QMouseEvent) -> None:
        if self._doc.num_frames:
            self.frame_clicked.emit(self.frame_at(event.position().x()))


class FrameSpinBox(QSpinBox):
    """The frame number box; `entered` fires when Enter confirms a typed number."""

    entered = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.entered.emit()


class ScrubBar(QWidget):
    """Slider, frame spin box and timecode for the document's current frame.

    `frame_entered` fires after Enter in the frame box, so the window can hand the
    keyboard back to the canvas (N, T, comma and period mean nothing in a number box).
    """

    frame_entered = Signal()

    def __init__(self, document: AnnotationDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.spin = FrameSpinBox()
        self.spin.entered.connect(self.frame_entered)
        self.spin.setKeyboardTracking(False)
        self.spin.setToolTip("Current frame")
        self.timecode = QLabel("00:00:00.000")
        self.timecode.setToolTip(
            "Time of this frame / of the last frame (hours:minutes:seconds.milliseconds)"
        )
        self.timecode.setMinimumWidth(170)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        layout.addWidget(self.timecode)
        self.slider.valueChanged.connect(self._doc.set_current_frame)
        self.spin.valueChanged.connect(self._doc.set_current_frame)
        document.video_changed.connect(self._on_video_changed)
        document.current_frame_changed.connect(self._on_current_frame_changed)
        self._on_video_changed()

    def _on_video_changed(self) -> None:
        last = max(self._doc.num_frames - 1, 0)
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setRange(0, last)
            widget.blockSignals(False)
        self.slider.setPageStep(max(last // 20, 10))
        self._on_current_frame_changed(self._doc.current_frame)

    def _on_current_frame_changed(self, frame: int) -> None:
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setValue(frame)
            widget.blockSignals(False)
        fps = self._doc.fps
        last = max(self._doc.num_frames - 1, 0)
        self.timecode.setText(f"{timecode(frame, fps)} / {timecode(last, fps)}")


class Playback(QObject):
    """Plays the document at the video's fps by advancing the current frame on a timer."""

    playing_changed = Signal(bool)

    def __init__(self, document: AnnotationDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_tick)

    @property
    def is_playing(self) -> bool:
        return self._timer.isActive()

    def toggle(self) -> None:
        if self.is_playing:
            self.stop()
        else:
            self.play()

    def play(self) -> None:
        if self._doc.num_frames <= 1:
            return
        if self._doc.current_frame >= self._doc.num_frames - 1:
            self._doc.set_current_frame(0)
        self._timer.start(max(round(1000 / self._doc.fps), 1))
        self.playing_changed.emit(True)

    def stop(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit(False)

    def _on_tick(self) -> None:
        frame = self._doc.current_frame + 1
        if frame >= self._doc.num_frames:
            self.stop()
            return
        self._doc.set_current_frame(frame)
