"""The interface every frame source offers: a sequence of upright RGB frames."""

from __future__ import annotations

import abc
import operator
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from app.video.cache import DEFAULT_CACHE_BYTES, FrameCache
from app.video.errors import VideoError


class VideoReader(abc.ABC):
    """Frames of a video file or image folder by number, in presentation order.

    `reader[i]` is frame i as a C-contiguous `uint8` array `(H, W, 3)` in RGB, upright (any
    rotation metadata applied), owned by the caller. Negative numbers count from the end.

    Subclasses decode frame i into an item (`_load`), which the cache keeps, and turn items
    into fresh RGB arrays (`_to_rgb`).

    Thread safety: any thread may read. Decoding holds the reader's lock, because a decoder
    has one position and FFmpeg codec contexts must not be used from two threads at once, so
    two threads that decode wait for each other. The cache has its own short lock, and the
    conversion to RGB runs outside the reader's lock, so a thread whose frame is cached never
    waits for another thread's decode (at most for one conversion).
    """

    def __init__(self, *, path: Path, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._path = path
        self._cache: FrameCache[object] = FrameCache(cache_bytes)
        self._lock = threading.Lock()
        self._closed = False
        self._timestamps = np.zeros(0, dtype=np.float64)
        self._fps = 0.0
        self._size = (0, 0)

    def _set_frames(self, *, timestamps: np.ndarray, fps: float, size: tuple[int, int]) -> None:
        """For subclasses, once opened: frame times in seconds, average rate, (H, W)."""
        timestamps = np.asarray(timestamps, dtype=np.float64)
        timestamps.flags.writeable = False
        self._timestamps = timestamps
        self._fps = float(fps)
        self._size = (int(size[0]), int(size[1]))

    @abc.abstractmethod
    def _load(self, index: int) -> tuple[object, int]:
        """Decode frame `index` (0 <= index < len) into an item to cache, and its size in bytes.

        Called with the reader's lock held. Raises VideoError when the frame cannot be decoded.
        """

    @abc.abstractmethod
    def _to_rgb(self, item: object) -> np.ndarray:
        """A new C-contiguous (H, W, 3) uint8 RGB array of an item, for the caller to own.

        Called from any thread without the reader's lock; must not modify `item`.
        """

    @abc.abstractmethod
    def _close(self) -> None:
        """Release files and decoders. Called once, with the reader's lock held."""

    @property
    def path(self) -> Path:
        return self._path

    @property
    def fps(self) -> float:
        """Average frame rate in frames per second."""
        return self._fps

    @property
    def declared_frames(self) -> int | None:
        """The frame count the source states about itself; None when it states none."""
        return None

    @property
    def truncated(self) -> bool:
        """The source ends early (a file cut short): `len` counts only the frames it holds."""
        return False

    @property
    def duration(self) -> float:
        """Length in seconds: `len(self) / fps`."""
        return len(self) / self._fps if self._fps > 0 else 0.0

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the returned frames, rotation applied."""
        return self._size

    @property
    def timestamps(self) -> np.ndarray:
        """(N,) float64 read-only: presentation time of each frame in seconds since frame 0."""
        return self._timestamps

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._timestamps)

    def __getitem__(self, index: int) -> np.ndarray:
        i = self._frame_number(index)
        item = self._cache.get(i)
        if item is None:
            with self._lock:
                if self._closed:
                    raise VideoError(f"reader of {self._path} is closed")
                # Another thread may have decoded it while this one waited for the lock.
                item = self._cache.get(i)
                if item is None:
                    item, nbytes = self._load(i)
                    self._cache.put(i, item, nbytes)
        frame = self._to_rgb(item)
        assert frame.shape == (*self._size, 3) and frame.dtype == np.uint8, frame.shape
        assert frame.flags.c_contiguous and frame.flags.writeable
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def _frame_number(self, index: int) -> int:
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} out of range for {n} frames of {self._path}")
        return i

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close()
        self._cache.clear()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self._size
        name = type(self).__name__
        return f"<{name} {self._path}: {len(self)} frames, {w}x{h}, {self._fps:.3f} fps>"
