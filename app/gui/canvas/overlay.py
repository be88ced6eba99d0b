"""NumPy frames and masks to QImages, on the GUI thread.

One RGBA overlay per frame: every visible object's mask filled with its colour at the
chosen opacity, and a fully opaque outline (the mask minus its erosion) so thin or
overlapping objects stay readable.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from PySide6.QtGui import QImage

_OUTLINE_KERNEL = np.ones((3, 3), np.uint8)


def frame_to_qimage(frame: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns its pixels."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    frame = np.ascontiguousarray(frame)
    h, w, _ = frame.shape
    return QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def compose_overlay(
    shape: tuple[int, int],
    masks: Iterable[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    opacity: float,
    outline: bool = True,
) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of coloured masks; later masks paint over earlier ones."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    h, w = shape
    rgba = np.zeros((h, w, 4), np.uint8)
    fill_alpha = round(255 * opacity)
    for mask, color in masks:
        if mask.shape != (h, w):
            raise ValueError(f"mask shape {mask.shape} does not match frame {(h, w)}")
        rgba[mask] = (*color, fill_alpha)
        if outline:
            m8 = mask.astype(np.uint8)
            edge = (m8 ^ cv2.erode(m8, _OUTLINE_KERNEL, borderType=cv2.BORDER_CONSTANT)) > 0
            rgba[edge] = (*color, 255)
    return rgba


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 RGBA -> a QImage that owns its pixels."""
    rgba = np.ascontiguousarray(rgba)
    h, w, _ = rgba.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def recompose_region(
    rgba: np.ndarray,
    masks: Iterable[tuple[np.ndarray, tuple[int, int, int]]],
    rect: tuple[int, int, int, int],
    *,
    opacity: float,
) -> None:
    """Redo `compose_overlay` inside `rect` (x0, y0, x1, y1; x1, y1 exclusive) of `rgba`.

    The region is composed with a one pixel margin and only its inside copied back, so the
    outlines there match a full compose: a brush stroke then costs its own size, not the
    frame's (a 4K overlay takes tens of milliseconds to compose whole).
    """
    h, w, _ = rgba.shape
    x0, y0, x1, y1 = rect
    ex0, ey0, ex1, ey1 = max(x0 - 1, 0), max(y0 - 1, 0), min(x1 + 1, w), min(y1 + 1, h)
    crops = [(mask[ey0:ey1, ex0:ex1], color) for mask, color in masks]
    part = compose_overlay((ey1 - ey0, ex1 - ex0), crops, opacity=opacity)
    rgba[y0:y1, x0:x1] = part[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
