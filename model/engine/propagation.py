"""Propagation: tracking every prompted object through the video, frame by frame.

The machinery behind `TrackingSession.propagate` and its pending-work queries, as functions
taking the parts of the session they drive (`Tracker`: the model, the frame features, the
memory bank and the tracks), so that this module never imports the session that imports it:

- a pass first encodes the memories of prompted frames (`commit_pending`, the reference's
  preflight), then visits frames in order; "full" recomputes every frame from the start,
  "local" only, per object, from each frame edited since the last pass up to its next
  keyframe (`model.engine.schedule`);
- on each frame the objects whose memories line up run as one batch (`track_objects`);
- a pass is cancellable between frames and keeps what it did: a cancelled or abandoned
  pass marks where it stopped, so the next local pass resumes there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Protocol

import torch

from model.engine.conditioned_cache import ConditionedCache
from model.engine.frame_features import FrameFeatures
from model.engine.frame_step import (
    Cancelled,
    cancellable,
    condition_group,
    group_key,
    objects_per_attention_call,
)
from model.engine.memory_bank import MemoryBank, ObjectTrack
from model.engine.prompts import FrameResult
from model.engine.results import frame_result, store_outputs
from model.engine.schedule import full_order, local_order, local_spans
from model.kernels.device import release_free_memory
from model.sam2.model import Sam2Model

DIRECTIONS = {"forward": (False,), "backward": (True,), "both": (False, True)}
MODES = ("local", "full")
# Frames between returning freed heap memory to the OS during long propagations.
_TRIM_EVERY = 100

# Per object, the frames a pass recomputes.
Compute = dict[int, set[int]]


class Tracker(Protocol):
    """What a pass reads and drives of a `TrackingSession` (which satisfies it)."""

    model: Sam2Model
    device: torch.device
    num_frames: int
    _bank: MemoryBank
    _tracks: dict[int, ObjectTrack]
    _frames: FrameFeatures
    _conditioned: ConditionedCache

    @property
    def video_size(self) -> tuple[int, int]: ...

    def _autocast(self) -> AbstractContextManager: ...

    def _gather(
        self, obj_id: int, track: ObjectTrack, frame: int, reverse: bool
    ) -> tuple[list, list, int]: ...

    def _postprocess(self, logits: torch.Tensor) -> torch.Tensor: ...


# ------------------------------------------------------------------ pending work


def has_pending_work(bank: MemoryBank, tracks: dict[int, ObjectTrack], direction: str) -> bool:
    """Whether a local pass in `direction` has frames to start from (edits since the last
    pass, or where a cancelled one stopped) for an object that has a keyframe."""
    return any(
        t.dirty[r] and (t.keyframes() or bank.cond_frames(t))
        for r in DIRECTIONS[direction]
        for t in tracks.values()
    )


def take_pending(
    tracks: dict[int, ObjectTrack], direction: str
) -> dict[tuple[int, bool], set[int]]:
    """Remove and return the marks the next local pass in `direction` would start from,
    so that a pass covers only later edits; `restore_pending` puts them back."""
    taken = {}
    for o, t in tracks.items():
        for r in DIRECTIONS[direction]:
            if t.dirty[r]:
                taken[(o, r)] = set(t.dirty[r])
                t.dirty[r].clear()
    return taken


def restore_pending(
    tracks: dict[int, ObjectTrack], taken: dict[tuple[int, bool], set[int]]
) -> None:
    for (o, r), frames in taken.items():
        if o in tracks:
            tracks[o].dirty[r].update(frames)


# ------------------------------------------------------------------ passes


@torch.inference_mode()
def run_passes(
    session: Tracker,
    start: int | None,
    directions: tuple[bool, ...],
    mode: str,
    should_stop: Callable[[], bool] | None,
) -> Iterator[FrameResult]:
    """One pass per direction (False: forward), one `FrameResult` per visited frame."""
    try:
        with cancellable(session.model, should_stop):
            commit_pending(session)
    except Cancelled:
        return
    bank = session._bank
    active = {o: t for o, t in session._tracks.items() if bank.cond_frames(t)}
    all_keys = sorted({k for o, t in active.items() for k in bank.cond_frames(t)})
    for reverse in directions:
        begin = start if start is not None else (all_keys[-1] if reverse else all_keys[0])
        if mode == "full":
            order = full_order(begin, session.num_frames, reverse=reverse)
            compute = {o: set(order) for o in active}
        else:
            compute, order = _local_plan(bank, session.num_frames, active, start, reverse)
        for t in active.values():
            t.dirty[reverse].clear()
        done = 0
        try:
            for frame in order:
                if should_stop is not None and should_stop():
                    return
                try:
                    with cancellable(session.model, should_stop):
                        _step(session, frame, active, compute, reverse)
                except Cancelled:
                    return
                done += 1
                if done % _TRIM_EVERY == 0:
                    release_free_memory()
                yield frame_result(session._tracks, frame)
        finally:
            # Cancelled or abandoned: the next local pass resumes where this stopped.
            _mark_unfinished(bank, active, compute, order[done:], reverse)


def _local_plan(
    bank: MemoryBank,
    num_frames: int,
    active: dict[int, ObjectTrack],
    start: int | None,
    reverse: bool,
) -> tuple[Compute, list[int]]:
    compute, starts = {}, {}
    for o, t in active.items():
        dirty = set(t.dirty[reverse]) | ({start} if start is not None else set())
        keys = bank.cond_frames(t)
        compute[o] = local_spans(keys, dirty, num_frames, reverse=reverse)
        starts[o] = {d for d in dirty if d in keys}
    return compute, local_order(compute, starts, reverse=reverse)


def _mark_unfinished(
    bank: MemoryBank,
    active: dict[int, ObjectTrack],
    compute: Compute,
    remaining: list[int],
    reverse: bool,
) -> None:
    # A local span ends at the next keyframe, so every run of frames left (and each
    # keyframe a full pass had yet to cross) needs its own mark, not just the first.
    step = -1 if reverse else 1
    for o, t in active.items():
        left = {f for f in remaining if f in compute[o]}
        keys = bank.cond_frames(t)
        t.dirty[reverse].update(f for f in left if f - step not in left or f in keys)


def _step(
    session: Tracker,
    frame: int,
    active: dict[int, ObjectTrack],
    compute: Compute,
    reverse: bool,
) -> None:
    keys, to_track = [], []
    for o, t in active.items():
        if frame in session._bank.cond_frames(t):
            keys.append(o)
        elif frame in compute[o]:
            to_track.append(o)
    if to_track:
        track_objects(session, frame, to_track, reverse)
    # Only once the frame is done: a cancelled frame changes nothing.
    for o in keys + to_track:
        active[o].tracked[frame] = reverse


# ------------------------------------------------------------------ one frame


def track_objects(session: Tracker, frame: int, obj_ids: list[int], reverse: bool) -> None:
    """Track several objects on one frame, batching those whose memories line up."""
    model, tracks = session.model, session._tracks
    groups: dict[tuple, list] = defaultdict(list)
    for o in obj_ids:
        memories, pointers, max_ptrs = session._gather(o, tracks[o], frame, reverse)
        groups[group_key(memories, pointers, max_ptrs)].append((o, memories, pointers))
    # A pass reads each frame once: it must not fill the cache with them.
    feats = session._frames.get(frame, keep=False)
    done = []
    for (_, _, max_ptrs), items in groups.items():
        batch = feats.expand(len(items))
        per_call = objects_per_attention_call(session.device, len(items))
        with session._autocast():
            fused = condition_group(model, feats, items, max_ptrs, per_call=per_call)
            out = model.track_step(batch, is_init_cond_frame=False, conditioned=fused)
        for i, (o, mems, ptrs) in enumerate(items):
            session._conditioned.put(o, frame, mems, ptrs, max_ptrs, fused[i : i + 1])
        logits = session._postprocess(out.sam.low_res_masks.float())
        done.append(([it[0] for it in items], logits, out))
    # Stored once every group is done, so a cancelled frame leaves nothing behind.
    for ids, logits, out in done:
        for o in ids:
            session._bank.drop(o, tracks[o], frame)
        size = session.video_size
        store_outputs(session._bank, tracks, size, ids, frame, logits, out.sam, out.memory_features)


def commit_pending(session: Tracker) -> None:
    """Encode the memories of prompted frames, batched per frame (the reference's preflight)."""
    tracks = session._tracks
    by_frame: dict[int, list[int]] = defaultdict(list)
    for o, t in tracks.items():
        for frame in t.pending:
            by_frame[frame].append(o)
    for frame, ids in sorted(by_frame.items()):
        tensors = [session._bank.tensors(o, tracks[o], frame) for o in ids]
        logits = torch.cat([x.logits for x in tensors])
        scores = torch.cat([x.score for x in tensors])
        with session._autocast():
            memory, _ = session.model.encode_memory(
                session._frames.get(frame, keep=False).expand(len(ids)).vision,
                session.model.upsample_logits(logits),
                scores,
                is_mask_from_pts=True,
            )
        for i, o in enumerate(ids):
            track = tracks[o]
            output = track.outputs[frame]
            output.tensors = replace(tensors[i], memory=memory[i : i + 1].to(torch.bfloat16))
            track.pending.discard(frame)
            track.stash.pop(frame, None)
