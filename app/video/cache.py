"""A least-recently-used cache of decoded frames, bounded in frames and in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
# Frames kept around the reader's recent positions. A viewer stepping or scrubbing near the
# current frame hits them; a one-pass read (tracking, export) never reads a frame again, so
# a larger window would only fill memory with frames already passed. Two seconds of video
# at 30 fps; 1080p YUV frames take 3 MB each, so the byte bound still rules above ~170.
DEFAULT_CACHE_FRAMES = 64

T = TypeVar("T")


class FrameCache(Generic[T]):
    """Decoded frames by frame number, dropping the least recently used beyond either bound.

    `max_frames` is the working window; `max_bytes` an upper limit for large frames.

    Items are stored as given and must never be written to afterwards: readers hand out
    conversions or copies of them, never the items themselves.

    Thread-safe: one lock guards the table and is held only for dictionary work, never while
    decoding, so a cache hit on the GUI thread never waits for a decode on the worker thread.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_CACHE_BYTES, *, max_frames: int = DEFAULT_CACHE_FRAMES
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        if max_frames < 0:
            raise ValueError(f"cache size must be >= 0 frames, got {max_frames}")
        self._max_bytes = int(max_bytes)
        self._max_frames = int(max_frames)
        self._items: OrderedDict[int, tuple[T, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def max_frames(self) -> int:
        return self._max_frames

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached items now (always <= `max_bytes`)."""
        with self._lock:
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: int) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: int) -> T | None:
        """The cached item, now the most recently used, or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: int, item: T, nbytes: int) -> None:
        """Keep `item`, which holds `nbytes` bytes, evicting the least recently used to fit."""
        if nbytes > self._max_bytes or self._max_frames == 0:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= old[1]
            while self._items and (
                self._nbytes + nbytes > self._max_bytes or len(self._items) >= self._max_frames
            ):
                _, (_, evicted) = self._items.popitem(last=False)
                self._nbytes -= evicted
            self._items[key] = (item, nbytes)
            self._nbytes += nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nbytes = 0
