"""A least-recently-used cache of decoded frames, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024

T = TypeVar("T")


class FrameCache(Generic[T]):
    """Decoded frames by frame number, dropping the least recently used beyond `max_bytes`.

    Items are stored as given and must never be written to afterwards: readers hand out
    conversions or copies of them, never the items themselves.

    Thread-safe: one lock guards the table and is held only for dictionary work, never while
    decoding, so a cache hit on the GUI thread never waits for a decode on the worker thread.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self._max_bytes = int(max_bytes)
        self._items: OrderedDict[int, tuple[T, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

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
        if nbytes > self._max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= old[1]
            while self._items and self._nbytes + nbytes > self._max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._nbytes -= evicted
            self._items[key] = (item, nbytes)
            self._nbytes += nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nbytes = 0
