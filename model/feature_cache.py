"""A least-recently-used cache of image-encoder outputs, bounded in bytes."""

from __future__ import annotations

from collections import OrderedDict

from model.sam2 import ImageFeatures


def features_nbytes(features: ImageFeatures) -> int:
    """Bytes held by one entry; the position encoding is shared across frames, not counted."""
    tensors = (features.vision, *features.high_res)
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """frame index -> ImageFeatures, evicting the least recently used beyond `max_bytes`.

    The most recent entry is always kept, even if it alone exceeds the bound.
    """

    def __init__(self, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, tuple[ImageFeatures, int]] = OrderedDict()
        self._bytes = 0

    def __contains__(self, frame: int) -> bool:
        return frame in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def get(self, frame: int) -> ImageFeatures | None:
        entry = self._entries.get(frame)
        if entry is None:
            return None
        self._entries.move_to_end(frame)
        return entry[0]

    def put(self, frame: int, features: ImageFeatures) -> None:
        self.discard(frame)
        size = features_nbytes(features)
        self._entries[frame] = (features, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, (_, old) = self._entries.popitem(last=False)
            self._bytes -= old

    def discard(self, frame: int) -> None:
        entry = self._entries.pop(frame, None)
        if entry is not None:
            self._bytes -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
