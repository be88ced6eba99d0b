"""A tiny synthetic video (a box moving right) and a seeded tiny model, for engine tests."""

from __future__ import annotations

import numpy as np
import torch

from model.sam2.build import build_model
from model.sam2.config import get_config
from model.sam2.model import Sam2Model

H, W = 48, 64


class MovingBoxVideo:
    """`num_frames` frames of (H, W, 3) uint8: a reddish box moving 3 px right per frame."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        img = np.full((H, W, 3), 30, np.uint8)
        img[10:30, 5 + 3 * index : 25 + 3 * index] = (200, 80, 60)
        return img


def tiny_model() -> Sam2Model:
    torch.manual_seed(0)
    return build_model(get_config("sam2.1-tiny", image_size=64))
