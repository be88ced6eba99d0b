"""The progress line of `masklet batch` on stderr: videos done/total, frames/s over all
workers, and an ETA.

The ETA weighs what is left by file size (the scheduler's measure of a video's work), so a
few long videos left at the end are not mistaken for a few short ones. Until a video has
finished there is no rate to speak of (the workers are still loading the model and
tracking their first frames), so the line says "estimating…" rather than 0.0 frames/s.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from app.headless.eta import ESTIMATING

__all__ = ["BatchProgress"]


class BatchProgress:
    """Redrawn in place with `\\r`; `close()` ends the line."""

    def __init__(self, total: int, skipped: int, work: float, stream: TextIO | None = None) -> None:
        self.total = total
        self.skipped = skipped
        self.finished = 0
        self.failed = 0
        self.frames = 0
        self._work_left = work
        self._work_done = 0.0
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.monotonic()
        self._drawn = False

    @property
    def done(self) -> int:
        """Videos with an outcome: finished now, skipped as finished before, or failed."""
        return self.finished + self.skipped + self.failed

    def video_finished(self, frames: int, work: float) -> None:
        self.finished += 1
        self.frames += frames
        self._account(work)

    def video_failed(self, work: float) -> None:
        self.failed += 1
        self._account(work)

    def _account(self, work: float) -> None:
        self._work_done += work
        self._work_left = max(0.0, self._work_left - work)
        self.draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        text = f"batch: {self.done}/{self.total} videos"
        extras = [f"{n} {what}" for n, what in ((self.failed, "failed"), (self.skipped, "skipped"))]
        extras = [e for e in extras if not e.startswith("0 ")]
        if extras:
            text += f" ({', '.join(extras)})"
        if self._work_done <= 0:
            return text + f", frames/s and ETA {ESTIMATING}" if self.done < self.total else text
        text += f", {self.frames / elapsed:.1f} frames/s"
        if self.done < self.total:
            eta = elapsed * self._work_left / self._work_done
            text += f", ETA {_clock(eta)}"
        return text

    def draw(self) -> None:
        self._stream.write("\r" + self.line())
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
