"""SAM 2's memory selection: which past frames tracking a frame reads (integers only).

Kept apart from the tensor maths so the session can tell in advance which frames'
memories it must keep or read back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from model.sam2.config import Sam2Config


@dataclass(frozen=True)
class MemoryPlan:
    """Which past frames the model reads when tracking one frame (frame indices only).

    A frame listed in `recent` or `pointer_recent` is used if the session has a
    non-conditioning output for it, or if it is one of `unselected_cond`.
    """

    cond: tuple[int, ...]  # conditioning frames attended with temporal position 0
    unselected_cond: frozenset[int]  # conditioning frames beyond max_cond_frames_in_attn
    recent: tuple[tuple[int, int], ...]  # (temporal position 1..num_maskmem-1, frame)
    pointer_cond: tuple[tuple[int, int], ...]  # (signed/abs distance, cond frame)
    pointer_recent: tuple[tuple[int, int], ...]  # (distance, frame)
    max_pointers: int  # normalises the pointers' temporal encoding

    def frames(self) -> set[int]:
        """Every frame whose memory this plan may read."""
        out = set(self.cond) | {t for _, t in self.recent}
        return out | {t for _, t in self.pointer_cond} | {t for _, t in self.pointer_recent}


def select_closest_cond_frames(
    frame: int, cond_frames: Collection[int], max_count: int
) -> tuple[list[int], list[int]]:
    """Split conditioning frames into the `max_count` closest to `frame` and the rest.

    The closest one before and the closest one at-or-after are always kept; -1
    keeps all of them.
    """
    frames = sorted(cond_frames)
    if max_count == -1 or len(frames) <= max_count:
        return frames, []
    if max_count < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or at least 2")
    chosen = []
    before = [t for t in frames if t < frame]
    after = [t for t in frames if t >= frame]
    if before:
        chosen.append(before[-1])
    if after:
        chosen.append(after[0])
    rest = sorted((t for t in frames if t not in chosen), key=lambda t: abs(t - frame))
    chosen += rest[: max_count - len(chosen)]
    return sorted(chosen), [t for t in frames if t not in chosen]


def plan_memories(
    cfg: Sam2Config, frame: int, cond_frames: Collection[int], *, num_frames: int, reverse: bool
) -> MemoryPlan:
    """Which frames' memories tracking `frame` reads (conditioning frames first)."""
    selected, unselected = select_closest_cond_frames(
        frame, cond_frames, cfg.max_cond_frames_in_attn
    )
    step = -1 if reverse else 1  # direction of "before" in tracking order
    max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
    ptr_cond = []
    for t in selected:
        if cfg.only_obj_ptrs_in_the_past_for_eval and (t < frame if reverse else t > frame):
            continue
        dist = (frame - t) * step if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame - t)
        ptr_cond.append((dist, t))
    ptr_recent = []
    for t_diff in range(1, max_ptrs):
        t = frame - step * t_diff
        if t < 0 or t >= num_frames:
            break
        ptr_recent.append((t_diff, t))
    return MemoryPlan(
        cond=tuple(selected),
        unselected_cond=frozenset(unselected),
        recent=tuple(_recent_frames(cfg, frame, reverse)),
        pointer_cond=tuple(ptr_cond),
        pointer_recent=tuple(ptr_recent),
        max_pointers=max_ptrs,
    )


def _recent_frames(cfg: Sam2Config, frame: int, reverse: bool) -> list[tuple[int, int]]:
    """(temporal position, frame) of the num_maskmem - 1 previous frames, oldest first."""
    stride = cfg.memory_temporal_stride_for_eval
    out = []
    for t_pos in range(1, cfg.num_maskmem):
        back = cfg.num_maskmem - t_pos  # frames before the current one
        if back == 1:
            prev = frame + 1 if reverse else frame - 1
        elif not reverse:
            # Every stride-th frame, the nearest at or before frame - 2.
            prev = ((frame - 2) // stride) * stride - (back - 2) * stride
        else:
            prev = -(-(frame + 2) // stride) * stride + (back - 2) * stride
        out.append((t_pos, prev))
    return out
