"""Overlay video export: the frames with coloured semi-transparent masks and outlines.

H.264 in MP4 through PyAV, yuv420p so ordinary players accept it. yuv420p needs even
width and height, so odd sizes get one edge-replicated pixel row/column.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from app.export.files import atomic_output, frame_file_name, write_frame_image
from app.export.palette import palette_color
from app.export.source import ExportOptions, ExportSource, FrameLoop, ObjectMeta

__all__ = ["draw_overlay", "object_colors", "write_overlay"]

FILL_ALPHA = 0.5
OUTLINE_PX = 2
FALLBACK_FPS = 25.0


def object_colors(objects: Sequence[ObjectMeta]) -> dict[int, tuple[int, int, int]]:
    """Each object's own colour, or its palette colour (the PNG export's index) if it has none."""
    return {
        obj.obj_id: obj.color if obj.color is not None else palette_color(k)
        for k, obj in enumerate(objects, start=1)
    }


def draw_overlay(
    rgb: np.ndarray, masks: dict[int, np.ndarray], colors: dict[int, tuple[int, int, int]]
) -> np.ndarray:
    """Blend each mask's colour into a copy of the (H, W, 3) frame, in `colors` order."""
    canvas = rgb.astype(np.float32)
    outlines = []
    for obj_id, color in colors.items():
        mask = masks.get(obj_id)
        if mask is None or not mask.any():
            continue
        canvas[mask] = canvas[mask] * (1.0 - FILL_ALPHA) + np.float32(color) * FILL_ALPHA
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        outlines.append((contours, color))
    out = np.ascontiguousarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
    # Outlines go on last so a later object's fill does not tint an earlier one's edge.
    for contours, color in outlines:
        cv2.drawContours(out, contours, -1, color, OUTLINE_PX)
    return out


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    return np.pad(rgb, pad, mode="edge") if any(p[1] for p in pad[:2]) else rgb


def _frame_rate(fps: float, step: int) -> Fraction:
    """Source rate divided by the step, so the overlay keeps the video's real duration."""
    base = fps if fps > 0 else FALLBACK_FPS
    return Fraction(base / step).limit_denominator(1001)


def write_overlay(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    """Encode the overlay MP4 at `out` (frame images under `out.parent` if asked)."""
    colors = object_colors(objects)
    height, width = source.video_size
    written = []
    with atomic_output(out) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=_frame_rate(source.fps, options.step))
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20"}
        for frame in frames:
            loop.check()
            rgb = source.image(frame)
            picture = draw_overlay(rgb, source.masks(frame), colors)
            video_frame = av.VideoFrame.from_ndarray(_pad_even(picture), format="rgb24")
            container.mux(stream.encode(video_frame))
            if options.images is not None:
                name = frame_file_name(source.name, frame, options.images)
                quality = options.jpeg_quality
                written.append(write_frame_image(out.parent, name, rgb, quality=quality))
            loop.step()
        container.mux(stream.encode(None))
    return [out, *written]
