"""User prompts and per-frame results of the tracking session (video-pixel coordinates)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from model.sam2.model import PointInputs


@dataclass(frozen=True)
class Prompt:
    """Clicks and/or a box, or a mask, for one object on one frame, in video pixels."""

    points: np.ndarray | None = None  # (N, 2) float x, y
    labels: np.ndarray | None = None  # (N,) int: 1 positive, 0 negative
    box: np.ndarray | None = None  # (4,) float x0, y0, x1, y1
    mask: np.ndarray | None = None  # (H, W) bool at video resolution


@dataclass(frozen=True)
class ObjectResult:
    obj_id: int
    mask: np.ndarray = field(repr=False)  # (H, W) bool at video resolution
    score: float  # object score logit; > 0 means the object is present
    iou: float  # the decoder's predicted IoU of the mask

    @property
    def present(self) -> bool:
        return self.score > 0


@dataclass(frozen=True)
class FrameResult:
    frame: int
    objects: dict[int, ObjectResult]


def validate_prompt(prompt: Prompt, video_size: tuple[int, int]) -> None:
    """ValueError with a clear message for any malformed prompt."""
    if not isinstance(prompt, Prompt):
        raise ValueError(f"expected a Prompt, got {type(prompt).__name__}")
    has_points = prompt.points is not None or prompt.labels is not None
    if prompt.mask is not None:
        if has_points or prompt.box is not None:
            raise ValueError("a mask prompt cannot be combined with points or a box")
        mask = np.asarray(prompt.mask)
        if mask.shape != tuple(video_size):
            raise ValueError(f"mask must be {video_size} (video H, W), got {mask.shape}")
        return
    if not has_points and prompt.box is None:
        raise ValueError("a prompt needs points, a box or a mask")
    if has_points:
        if prompt.points is None or prompt.labels is None:
            raise ValueError("points and labels must be given together")
        points, labels = np.asarray(prompt.points), np.asarray(prompt.labels)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(f"points must be (N, 2) with N >= 1, got {points.shape}")
        if labels.shape != (points.shape[0],):
            raise ValueError(f"labels must be ({points.shape[0]},), got {labels.shape}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 1 (positive) or 0 (negative)")
        if not np.isfinite(points).all():
            raise ValueError("points must be finite")
    if prompt.box is not None:
        box = np.asarray(prompt.box, dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValueError(f"box must be 4 finite numbers x0, y0, x1, y1, got {box.shape}")


def point_inputs(
    prompt: Prompt, video_size: tuple[int, int], image_size: int, device: torch.device
) -> PointInputs:
    """Clicks and box corners (labels 2, 3, first) scaled to the model's input pixels."""
    coords = torch.zeros(0, 2, dtype=torch.float32)
    labels = torch.zeros(0, dtype=torch.int32)
    if prompt.points is not None:
        coords = torch.as_tensor(np.asarray(prompt.points), dtype=torch.float32)
        labels = torch.as_tensor(np.asarray(prompt.labels), dtype=torch.int32)
    if prompt.box is not None:
        box = torch.as_tensor(np.asarray(prompt.box), dtype=torch.float32).reshape(2, 2)
        coords = torch.cat([box, coords])
        labels = torch.cat([torch.tensor([2, 3], dtype=torch.int32), labels])
    h, w = video_size
    coords = coords / torch.tensor([w, h], dtype=torch.float32) * image_size
    return PointInputs(coords=coords[None].to(device), labels=labels[None].to(device))


def mask_input(mask: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """(H, W) bool video mask -> (1, 1, S, S) float 0/1 at the model's input size."""
    x = torch.as_tensor(np.asarray(mask, dtype=bool)).to(device)[None, None].float()
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True)
        x = (x >= 0.5).float()
    return x
