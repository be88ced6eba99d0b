"""Time left from the recent rate, for the app's and the CLI's progress lines.

A propagation's per-frame cost grows while the memory bank fills (more memories and
object pointers to attend to), so the mean rate since the start overstates the
speed of the frames still to come, and an ETA from it climbs during the run (from
3 to 17 minutes on one long video). `RecentRate` keeps the last few progress
updates and measures the rate over them only: once the bank is full the ETA is
right, and it falls steadily from then on.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RecentRate"]


class RecentRate:
    """Units per second over the last `window` updates (but at least `min_seconds` of them).

    `update(done, now)` after each step, with `now` from a monotonic clock; `rate` is 0
    and `eta` infinite until two updates with progress between them have been seen.
    The time floor keeps the rate steady when steps are very fast (a GPU at 30 frames/s
    would otherwise measure it over a third of a second).
    """

    def __init__(self, window: int = 10, min_seconds: float = 2.0) -> None:
        if window < 1 or min_seconds < 0:
            raise ValueError("window must be >= 1 and min_seconds >= 0")
        self._window = window
        self._min_seconds = min_seconds
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, done: int, now: float) -> None:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # a new run restarted the count
        self._samples.append((now, done))
        # Drop the oldest sample only while the rest still spans the window and the floor.
        while len(self._samples) > self._window + 1 and (
            now - self._samples[1][0] >= self._min_seconds
        ):
            self._samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if d1 <= d0 or t1 <= t0:
            return 0.0
        return (d1 - d0) / (t1 - t0)

    def eta(self, total: int) -> float:
        """Seconds left to reach `total` at the recent rate; inf while it is unknown."""
        rate = self.rate
        if rate <= 0:
            return math.inf
        left = max(total - self._samples[-1][1], 0)
        return left / rate
