"""Rate and time left from the recent, representative steps, for the app's and the CLI's
progress lines.

A propagation's per-frame cost grows while the memory bank fills (more memories and
object pointers to attend to), so the mean rate since the start overstates the
speed of the frames still to come, and an ETA from it climbs during the run (from
3 to 17 minutes on one long video). `RecentRate` keeps the last few steps and
measures the rate over them only: once the bank is full the ETA is right, and it
falls steadily from then on.

The first steps of a run cost something else again: the prompted frame is only read
back (no encoding, no memory attention), the first model call pays its warm-up, and
frames whose embeddings were computed ahead skip the image encoder. Measured on them,
the first rate was 10 to 80 times too fast (2.9 frames/s in the app against a real
0.2-0.4; 16.92 frames/s after frame 1 in the CLI). So the first `warmup` steps and
every step flagged untypical are left out, and the rate stays unknown ("estimating…")
until `min_steps` representative steps have been measured.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["ESTIMATING", "RecentRate"]

# What a progress line says while the rate is unknown.
ESTIMATING = "estimating…"


class RecentRate:
    """Units per second over the last `window` representative steps (but at least
    `min_seconds` of them).

    `update(done, now)` after each step, with `now` from a monotonic clock; pass
    `typical=False` for a step whose cost is not that of the steps still to come. `rate`
    is 0 and `eta` infinite until `min_steps` typical steps after the first `warmup` ones
    have been seen. The time floor keeps the rate steady when steps are very fast (a GPU
    at 30 frames/s would otherwise measure it over a third of a second).
    """

    def __init__(
        self,
        window: int = 10,
        min_seconds: float = 2.0,
        *,
        warmup: int = 1,
        min_steps: int = 2,
    ) -> None:
        if window < 1 or min_seconds < 0:
            raise ValueError("window must be >= 1 and min_seconds >= 0")
        if warmup < 0 or min_steps < 1:
            raise ValueError("warmup must be >= 0 and min_steps >= 1")
        self._window = window
        self._min_seconds = min_seconds
        self._warmup = warmup
        self._min_steps = min_steps
        self._last: tuple[float, int] | None = None  # (time, done) where the next step starts
        self._to_skip = warmup
        self._steps: deque[tuple[float, int]] = deque()  # (seconds, units) per kept step

    def update(self, done: int, now: float, *, typical: bool = True) -> None:
        if self._last is None or done < self._last[1]:
            self._restart(done, now)  # the first update, or a new run restarted the count
            return
        start, before = self._last
        if done == before:
            return  # no progress: its time belongs to the step that ends it
        self._last = (now, done)
        if self._to_skip > 0:
            self._to_skip -= 1
            return
        if not typical:
            return
        self._steps.append((now - start, done - before))
        # Drop the oldest step only while the rest still fill the window and the floor.
        while len(self._steps) > self._window and (
            sum(s for s, _ in self._steps) - self._steps[0][0] >= self._min_seconds
        ):
            self._steps.popleft()

    def _restart(self, done: int, now: float) -> None:
        self._last = (now, done)
        self._to_skip = self._warmup
        self._steps.clear()

    @property
    def estimating(self) -> bool:
        """True while too few representative steps have been measured for a rate."""
        return self.rate <= 0

    @property
    def rate(self) -> float:
        if len(self._steps) < self._min_steps:
            return 0.0
        seconds = sum(s for s, _ in self._steps)
        units = sum(u for _, u in self._steps)
        return units / seconds if seconds > 0 else 0.0

    def eta(self, total: int) -> float:
        """Seconds left to reach `total` at the recent rate; inf while it is unknown."""
        rate = self.rate
        if rate <= 0 or self._last is None:
            return math.inf
        return max(total - self._last[1], 0) / rate
