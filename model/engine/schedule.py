"""Which frames a propagation visits, and which objects it recomputes on each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def full_order(start: int, num_frames: int, *, reverse: bool) -> list[int]:
    """Every frame from `start` to the end of the video in the tracking direction.

    Like the reference, backward tracking from frame 0 visits nothing.
    """
    if reverse:
        return list(range(start, -1, -1)) if start > 0 else []
    return list(range(start, num_frames))


def local_spans(
    keyframes: Iterable[int], dirty: Iterable[int], num_frames: int, *, reverse: bool
) -> set[int]:
    """Frames to recompute after edits at `dirty` frames: from each edit up to the next keyframe.

    An edited keyframe itself keeps its prompted output, so its span starts one frame
    later; an edit that removed a keyframe starts on that frame.
    """
    keys = sorted(set(keyframes), reverse=reverse)
    step = -1 if reverse else 1
    out: set[int] = set()
    for d in dirty:
        later = [k for k in keys if (k < d if reverse else k > d)]
        end = later[0] if later else (-1 if reverse else num_frames)
        begin = d + step if d in keys else d
        out.update(range(begin, end, step))
    return out


def local_order(
    compute: Mapping[int, set[int]], starts: Mapping[int, Iterable[int]], *, reverse: bool
) -> list[int]:
    """Frames visited by a local propagation: every recomputed frame and each span's start."""
    frames = set().union(*compute.values()) if compute else set()
    for keys in starts.values():
        frames.update(keys)
    return sorted(frames, reverse=reverse)
