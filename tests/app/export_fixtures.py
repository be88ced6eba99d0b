"""A small in-memory export source: one grey level per frame, a box mask growing per frame."""

from __future__ import annotations

import numpy as np

from app.export import ObjectMeta, StoreSource
from app.project.mask_store import MaskStore


class FakeReader:
    """Frames of (H, W, 3) uint8, frame i filled with 10 * i."""

    def __init__(self, size: tuple[int, int], num_frames: int, fps: float = 5.0) -> None:
        self.size, self.fps, self._n = size, fps, num_frames

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> np.ndarray:
        return np.full((*self.size, 3), i * 10, np.uint8)


def box_source(size: tuple[int, int], num_frames: int, objects: list[ObjectMeta]) -> StoreSource:
    """Object 1 has a box growing by a row per frame; the other objects have no masks."""
    h, w = size
    store = MaskStore(size)
    for f in range(num_frames):
        mask = np.zeros((h, w), bool)
        mask[2 : 4 + f, 3:9] = True
        store.set(f, 1, mask)
    return StoreSource(name="v", reader=FakeReader(size, num_frames), store=store, objects=objects)
