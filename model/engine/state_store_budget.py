"""Which saved outputs the state store drops first when it would exceed its size budget.

Keyframe outputs, prompted frames not yet encoded and their stashed outputs are never
dropped: a session cannot rebuild them without the user. Every other output is a tracked
frame that propagation can recompute from the state kept before it. The ones dropped first
are those least likely to be needed soon: the farthest from any of the object's keyframes
(corrections happen near keyframes, and the frames right after one are what re-tracking
reads first) and from the frames the user visited recently. Ties go to later frames first,
then higher object ids, so the choice is deterministic.

A dropped frame is recorded in the index; on restore the session marks it for re-tracking
in the direction it was tracked, so the next local propagation recomputes it and the frames
after it up to the next keyframe (see `model.engine.schedule.local_spans`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_BUDGET_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Candidate:
    """One droppable saved output and the bytes it takes in the store."""

    obj_id: int
    frame: int
    nbytes: int


def choose_evictions(
    candidates: Iterable[Candidate],
    total_bytes: int,
    budget_bytes: int,
    keyframes: Mapping[int, list[int]],
    recent_frames: Iterable[int] = (),
) -> set[tuple[int, int]]:
    """(obj_id, frame) of the candidates to drop so the store fits `budget_bytes`, if it can."""
    if budget_bytes < 0:
        raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
    if total_bytes <= budget_bytes:
        return set()
    recent = sorted(set(recent_frames))

    def distance(c: Candidate) -> int:
        near = [abs(c.frame - k) for k in keyframes.get(c.obj_id, [])]
        near += [abs(c.frame - r) for r in recent]
        return min(near) if near else 1 << 62

    ranked = sorted(candidates, key=lambda c: (distance(c), c.frame, c.obj_id), reverse=True)
    dropped: set[tuple[int, int]] = set()
    for c in ranked:
        if total_bytes <= budget_bytes:
            break
        dropped.add((c.obj_id, c.frame))
        total_bytes -= c.nbytes
    return dropped


def describe_dropped(count: int, budget_bytes: int) -> str:
    """The one status line for frames whose state was dropped."""
    frames = "1 frame" if count == 1 else f"{count} frames"
    verb = "its" if count == 1 else "their"
    return (
        f"{frames} will be re-tracked: {verb} saved state was dropped to stay under "
        f"{format_bytes(budget_bytes)}"
    )


def format_bytes(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            value = n / size
            return (
                f"{value:.0f} {unit}"
                if value >= 10 or value == int(value)
                else f"{value:.1f} {unit}"
            )
    return f"{n} B"
