"""Checks of what `Sam3Finder.find` is given: the frame, exemplar boxes and points, each
refused with a one-line ValueError that says what was wrong."""

from __future__ import annotations

import numpy as np
import torch


def check_frame(frame: object) -> torch.Tensor:
    """An (H, W, 3) uint8 frame as a CPU tensor, or a one-line ValueError."""
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(np.ascontiguousarray(frame))
    if not isinstance(frame, torch.Tensor):
        raise ValueError(f"the frame must be an (H, W, 3) uint8 array, got {type(frame).__name__}")
    if frame.dtype != torch.uint8:
        raise ValueError(f"the frame must be uint8 RGB, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"the frame must be (H, W, 3), got {tuple(frame.shape)}")
    return frame.cpu()


def check_boxes(
    boxes: object, labels: object, size: tuple[int, int], limit: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exemplar boxes (N, 4) float64 x0, y0, x1, y1 inside the (H, W) frame, each of some
    area, and their (N,) bool labels; None for none; else a one-line ValueError."""
    if boxes is None:
        if labels is not None:
            raise ValueError("box labels given without boxes")
        return None
    try:
        b = torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError("boxes must be numbers, (N, 4) x0, y0, x1, y1") from None
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] == 0:
        raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1 with N >= 1, got {tuple(b.shape)}")
    if b.shape[0] > limit:
        raise ValueError(f"{b.shape[0]} exemplar boxes: at most {limit} are taken")
    if not torch.isfinite(b).all():
        raise ValueError("boxes must be finite numbers")
    h, w = size
    inside = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)
    if not inside.all():
        i = int((~inside).nonzero()[0])
        raise ValueError(f"box {i} {b[i].tolist()} is not inside the {w} x {h} frame")
    empty = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    if empty.any():
        i = int(empty.nonzero()[0])
        raise ValueError(f"box {i} {b[i].tolist()} has no area (need x0 < x1 and y0 < y1)")
    return b, _labels(labels, b.shape[0], "box")


def check_points(
    points: object, labels: object, size: tuple[int, int], limit: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exemplar points (M, 2) float64 x, y inside the (H, W) frame and their (M,) bool
    labels (True positive, default all); None for none; else a one-line ValueError."""
    if points is None:
        if labels is not None:
            raise ValueError("point labels given without points")
        return None
    try:
        p = torch.as_tensor(np.asarray(points, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError("points must be numbers, (M, 2) x, y") from None
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"points must be (M, 2) x, y with M >= 1, got {tuple(p.shape)}")
    if p.shape[0] > limit:
        raise ValueError(f"{p.shape[0]} exemplar points: at most {limit} are taken")
    if not torch.isfinite(p).all():
        raise ValueError("points must be finite numbers")
    h, w = size
    inside = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= w) & (p[:, 1] <= h)
    if not inside.all():
        i = int((~inside).nonzero()[0])
        raise ValueError(f"point {i} {p[i].tolist()} is not inside the {w} x {h} frame")
    return p, _labels(labels, p.shape[0], "point")


def _labels(labels: object, count: int, what: str) -> torch.Tensor:
    """(count,) bool labels, all True for None, or a one-line ValueError."""
    if labels is None:
        return torch.ones(count, dtype=torch.bool)
    try:
        lab = torch.as_tensor(np.asarray(labels, dtype=bool)).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{what} labels must be booleans (True: a positive exemplar)") from None
    if lab.shape[0] != count:
        plural = "boxes" if what == "box" else f"{what}s"
        raise ValueError(f"{lab.shape[0]} {what} labels for {count} {plural}")
    return lab.bool()
