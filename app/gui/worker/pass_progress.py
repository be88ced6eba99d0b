"""Progress of one propagation request, as the status bar shows it: distinct frames of
the range done, and a rate measured only on frames that cost what the rest will.

A correction during a pass makes the engine compute frames again (`LivePass` restarts
from the edited frame), so counting results overstated the work done: 36 "frames"
where the pass had reached frame 17. Here a frame counts once, and only inside the
range the request covers. The rate (`app.headless.eta.RecentRate`) leaves out frames that are
cheaper than the ones still to come: the prompted frames (read back, not tracked), the
frames whose embeddings were computed ahead while idle, frames computed again, and the
first frame of the pass (warm-up).
"""

from __future__ import annotations

import time
from typing import Any

from app.gui.worker.jobs import Progress
from app.headless.eta import RecentRate

__all__ = ["PassProgress", "frames_in_range"]


def frames_in_range(num_frames: int, start: int, direction: str) -> range:
    """The frames a propagation request from `start` in `direction` may visit."""
    if direction == "forward":
        return range(start, num_frames)
    if direction == "backward":
        return range(0, start + 1)
    return range(num_frames)


class PassProgress:
    """Counts one request's frames; `frame_done` after each result gives its `Progress`."""

    def __init__(self, session: Any, request_id: int, start: int, direction: str) -> None:
        self._session = session
        self._request_id = request_id
        self._range = frames_in_range(session.num_frames, start, direction)
        self._done: set[int] = set()
        cached = {f for f in self._range if session.is_encoded(f)}
        self._cached = cached
        self._uncached_left = len(self._range) - len(cached)
        self._started = time.perf_counter()
        self._computed = 0  # every result, for the mean rate
        self._recent = RecentRate()
        self._recent.update(0, self._started)

    @property
    def done(self) -> int:
        """Distinct frames of the range with a result."""
        return len(self._done)

    def frame_done(self, frame: int, obj_ids: list[int]) -> Progress:
        typical = self._typical(frame, obj_ids)
        if frame in self._range and frame not in self._done:
            self._done.add(frame)
            if frame not in self._cached:
                self._uncached_left -= 1
        self._computed += 1
        now = time.perf_counter()
        self._recent.update(self._computed, now, typical=typical)
        fps = self._computed / max(now - self._started, 1e-6)
        total = len(self._range)
        return Progress(self._request_id, self.done, total, fps, self._recent.rate)

    def _typical(self, frame: int, obj_ids: list[int]) -> bool:
        if frame in self._done:
            return False  # computed again: its embedding is cached by now
        if obj_ids and all(frame in self._session.keyframes(o) for o in obj_ids):
            return False  # every object is prompted here: nothing is tracked
        # Embedded ahead: cheaper, unless such frames are all that is left to compute.
        return frame not in self._cached or self._uncached_left <= 0
