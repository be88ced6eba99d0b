"""A least-recently-used cache of decoded frames, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


class FrameCache:
    """Decoded RGB frames by frame number, evicting the least recently used beyond `max_bytes`.

    Thread-safe: one lock guards the table, and it is held only for dictionary work, never
    while decoding, so a cache hit on the GUI thread never waits for a decode running on the
    worker thread. Stored arrays are made read-only; callers get copies from the reader.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self._max_bytes = int(max_bytes)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached frames now (always <= `max_bytes`)."""
        with self._lock:
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def __contains__(self, key: int) -> bool:
        with self._lock:
            return key in self._frames

    def get(self, key: int) -> np.ndarray | None:
        """The cached (read-only) frame, marked as most recently used, or None."""
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
            return frame

    def put(self, key: int, frame: np.ndarray) -> None:
        """Store `frame` (not copied: the caller must not write to it afterwards)."""
        size = frame.nbytes
        if size > self._max_bytes:
            return
        frame.flags.writeable = False
        with self._lock:
            old = self._frames.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            while self._frames and self._nbytes + size > self._max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self._nbytes -= evicted.nbytes
            self._frames[key] = frame
            self._nbytes += size

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._nbytes = 0
