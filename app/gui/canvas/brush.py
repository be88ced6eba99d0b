"""The canvas tools (points, brush, eraser, find similar) and one brush stroke painted into a mask.

A stroke paints into a uint8 copy of the object's mask at video resolution. Each mouse
event draws an OpenCV line, `2 * radius` thick with round ends, from the previous event's
position, so a fast stroke stays continuous at any zoom; it returns the rectangle it
touched, so the overlay is rebuilt there only and a 4K frame stays interactive.
"""

from __future__ import annotations

from enum import Enum

import cv2
import numpy as np

MIN_RADIUS = 1
MAX_RADIUS = 512
DEFAULT_RADIUS = 10

# (x0, y0, x1, y1) in video pixels, x1/y1 exclusive.
Rect = tuple[int, int, int, int]


class Tool(Enum):
    POINT = "point"
    BRUSH = "brush"
    ERASER = "eraser"
    FIND_SIMILAR = "find similar"  # a box around one instance finds others like it

    @property
    def paints(self) -> bool:
        return self in (Tool.BRUSH, Tool.ERASER)


def clamp_radius(radius: float) -> int:
    return int(min(max(round(radius), MIN_RADIUS), MAX_RADIUS))


class BrushStroke:
    """One press-drag-release of the brush (adds) or the eraser (removes) on one mask."""

    def __init__(self, base: np.ndarray | None, size: tuple[int, int], *, erase: bool, radius: int):
        """`base`: the object's (H, W) bool mask before the stroke, or None for an empty one."""
        h, w = size
        if base is not None and base.shape != (h, w):
            raise ValueError(f"mask shape {base.shape} does not match frame {(h, w)}")
        self._before = None if base is None else base.astype(bool, copy=True)
        self._buffer = np.zeros((h, w), np.uint8) if base is None else base.astype(np.uint8)
        self._value = 0 if erase else 1
        self._radius = clamp_radius(radius)
        self._last: tuple[int, int] | None = None
        self.erase = erase

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool view of the mask as painted so far (no copy; do not write to it)."""
        return self._buffer.view(bool)

    def paint_to(self, x: float, y: float) -> Rect | None:
        """Paint from the previous position (a dot on the first call); the touched rect."""
        point = (int(round(x)), int(round(y)))
        start = self._last or point
        self._last = point
        r = self._radius
        if start == point:
            cv2.circle(self._buffer, point, r, self._value, thickness=-1, lineType=cv2.LINE_8)
        else:
            # Thick OpenCV lines have round ends, so joined segments leave no gaps.
            cv2.line(self._buffer, start, point, self._value, 2 * r, lineType=cv2.LINE_8)
        h, w = self._buffer.shape
        x0 = max(min(start[0], point[0]) - r - 1, 0)
        y0 = max(min(start[1], point[1]) - r - 1, 0)
        x1 = min(max(start[0], point[0]) + r + 2, w)
        y1 = min(max(start[1], point[1]) + r + 2, h)
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None

    def changed(self) -> bool:
        """Whether the stroke changed any pixel of the mask it started from."""
        if self._before is None:
            return bool(self._buffer.any())
        return not np.array_equal(self._before, self.mask)

    def result(self) -> np.ndarray | None:
        """The painted (H, W) bool mask, or None when nothing is left of it."""
        mask = self.mask.copy()
        return mask if mask.any() else None
