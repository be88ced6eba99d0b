"""A least-recently-used cache of image-encoder outputs, bounded in frames and in bytes."""

from __future__ import annotations

from collections import OrderedDict

from model.sam2.model import ImageFeatures

# Frames of features kept for interactive use: the frames around the user's position that
# the app encodes ahead while idle (about ten) and the few frames just clicked, with room to
# spare. More would only keep frames the user has left, up to the byte bound: at 128 px one
# frame is 0.25 MB, at 1024 px 16 MB.
DEFAULT_WINDOW_FRAMES = 32


def features_nbytes(features: ImageFeatures) -> int:
    """Bytes held by one entry; the position encoding is shared across frames, not counted."""
    tensors = (features.vision, *features.high_res)
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """frame index -> ImageFeatures, evicting the least recently used beyond either bound.

    `max_frames` is the working window; `max_bytes` an upper limit for large image sizes.
    The most recent entry is always kept, even if it alone exceeds the byte bound.
    """

    def __init__(self, *, max_bytes: int, max_frames: int = DEFAULT_WINDOW_FRAMES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.max_bytes = max_bytes
        self.max_frames = max_frames
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
        while len(self._entries) > 1 and (
            self._bytes > self.max_bytes or len(self._entries) > self.max_frames
        ):
            _, (_, old) = self._entries.popitem(last=False)
            self._bytes -= old

    def discard(self, frame: int) -> None:
        entry = self._entries.pop(frame, None)
        if entry is not None:
            self._bytes -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
