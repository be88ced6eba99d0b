"""The timeline's frame ruler: ticks and frame numbers under the object rows.

Painted by `TimelineTracks` in the space below its rows, which seeks on click and drag
like the rows do, so no part of the timeline is dead to the mouse.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

RULER_HEIGHT = 22
# Numbered ticks at least this far apart, so "10000" labels never touch.
MIN_LABEL_PX = 56
_TICK_COLOR = QColor(150, 152, 160)
_TEXT_COLOR = QColor(190, 192, 198)
_BACKGROUND = QColor(30, 31, 34)


def tick_step(num_frames: int, width_px: float, min_px: float = MIN_LABEL_PX) -> int:
    """Frames between numbered ticks: the smallest 1, 2 or 5 x 10^k at least `min_px` apart."""
    if num_frames <= 0 or width_px <= 0:
        return 1
    per_frame = width_px / num_frames
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if step * per_frame >= min_px or step >= num_frames:
                return step
        magnitude *= 10


def paint_ruler(painter: QPainter, rect: QRectF, num_frames: int, left: float) -> None:
    """Ticks and numbers for frames 0..num_frames-1 laid out from x `left` to `rect.right()`.

    A frame f occupies [left + f * unit, left + (f + 1) * unit); its tick is at the slot's
    centre, the same x as the timeline's current-frame line."""
    painter.fillRect(rect, _BACKGROUND)
    width = rect.right() - left
    if num_frames <= 0 or width <= 0:
        return
    unit = width / num_frames
    step = tick_step(num_frames, width)
    minor = max(step // 5, 1) if step >= 5 else step
    painter.setPen(QPen(_TICK_COLOR, 1))
    top = rect.top()
    for frame in range(0, num_frames, minor):
        x = round(left + (frame + 0.5) * unit)
        length = 7 if frame % step == 0 else 3
        painter.drawLine(x, round(top), x, round(top + length))
    font = painter.font()
    font.setPointSizeF(max(font.pointSizeF() * 0.8, 6.0))
    painter.setFont(font)
    painter.setPen(_TEXT_COLOR)
    text_top = top + 7
    for frame in range(0, num_frames, step):
        x = left + (frame + 0.5) * unit
        box = QRectF(x - MIN_LABEL_PX / 2, text_top, MIN_LABEL_PX, rect.bottom() - text_top)
        align = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        painter.drawText(box, align, str(frame))
