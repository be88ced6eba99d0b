"""Undoing a prompt edit exactly: each object's frame state from before the edits on it.

An edit (`TrackingSession.add_prompt`, `clear_prompts`) replaces one object's prompts and
output on a frame and marks the frame for the next local pass. The app's undo sends the
earlier prompts back, and computing them again would not give the earlier state: a click
is refined from the frame's last logits (now the undone edit's), a frame that propagation
tracked cannot be recomputed from its prompts at all, and the frame would be tracked again
by the next pass for nothing. So before each edit the frame's whole state is kept (the
prompts, the output with its tensors and scores, whether it was pending with its stashed
output, the tracked direction, the re-propagation marks), and a request whose prompts equal
a kept state's puts that state back, bit for bit, dropping the states kept after it.

A kept state is exact for its frame whatever other frames were edited since: a prompted
frame's new output is only read by other frames once a pass has encoded it
(`MemoryBank.committed`). A pass may track later frames from the edit, so the session
forgets every kept state when one starts; undoing after it clears the prompts as the
reference does (the frame keeps its output as a tracked one and is tracked again).

Memory is bounded: at most `MAX_KEPT` states in all (about 0.75 MiB each at image size
1024), the oldest dropped first; an undo past them is computed as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import torch

from model.engine.memory_bank import FrameOutput, MemoryBank, ObjectTrack, Tensors
from model.sam2.types import PointInputs

MAX_KEPT = 64

# (obj_id, frame)
Key = tuple[int, int]


@dataclass(frozen=True)
class FrameState:
    """One object's state on one frame, as an edit found it."""

    points: PointInputs | None
    mask: torch.Tensor | None  # (1, 1, S, S) mask prompt
    output: FrameOutput | None  # a copy holding its tensors
    pending: bool
    stash: tuple[bool, Tensors, float] | None
    tracked: bool | None  # the direction propagation tracked it in; None: not tracked
    dirty: tuple[bool, bool]  # marked for the next forward / backward local pass

    def same_prompts(self, points: PointInputs | None, mask: torch.Tensor | None) -> bool:
        if (self.mask is None) != (mask is None) or (self.points is None) != (points is None):
            return False
        if mask is not None:
            return torch.equal(self.mask, mask)
        if points is not None:
            assert self.points is not None
            return torch.equal(self.points.coords, points.coords) and torch.equal(
                self.points.labels, points.labels
            )
        return True


class PromptHistory:
    """The kept states of every (object, frame), oldest first per frame."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Key, int], FrameState] = OrderedDict()
        self._stacks: dict[Key, list[int]] = {}
        self._serial = 0

    def keep(self, bank: MemoryBank, obj_id: int, track: ObjectTrack, frame: int) -> None:
        """Remember the frame's state before an edit changes it."""
        output = track.outputs.get(frame)
        copy = None
        if output is not None:
            tensors = bank.tensors(obj_id, track, frame)
            copy = replace(output, tensors=tensors, spill_slot=None, loader=None)
        state = FrameState(
            points=track.points.get(frame),
            mask=track.masks.get(frame),
            output=copy,
            pending=frame in track.pending,
            stash=track.stash.get(frame),
            tracked=track.tracked.get(frame),
            dirty=(frame in track.dirty[False], frame in track.dirty[True]),
        )
        key = (obj_id, frame)
        self._serial += 1
        self._kept[(key, self._serial)] = state
        self._stacks.setdefault(key, []).append(self._serial)
        while len(self._kept) > MAX_KEPT:
            (old_key, serial), _ = self._kept.popitem(last=False)
            self._stacks[old_key].remove(serial)

    def revert(
        self,
        bank: MemoryBank,
        obj_id: int,
        track: ObjectTrack,
        frame: int,
        prompts: tuple[PointInputs | None, torch.Tensor | None],
    ) -> bool:
        """Put back the latest kept state with these prompts; False if none is kept."""
        key = (obj_id, frame)
        stack = self._stacks.get(key, [])
        for depth in range(len(stack) - 1, -1, -1):
            state = self._kept[(key, stack[depth])]
            if state.same_prompts(*prompts):
                for serial in stack[depth:]:
                    del self._kept[(key, serial)]
                del stack[depth:]
                _restore(bank, obj_id, track, frame, state)
                return True
        return False

    def forget_object(self, obj_id: int) -> None:
        for key in [k for k in self._stacks if k[0] == obj_id]:
            for serial in self._stacks.pop(key):
                del self._kept[(key, serial)]

    def clear(self) -> None:
        self._kept.clear()
        self._stacks.clear()


def _restore(
    bank: MemoryBank, obj_id: int, track: ObjectTrack, frame: int, state: FrameState
) -> None:
    _put(track.points, frame, state.points)
    _put(track.masks, frame, state.mask)
    bank.drop(obj_id, track, frame)
    if state.output is not None:
        bank.put(obj_id, track, frame, replace(state.output))
    (track.pending.add if state.pending else track.pending.discard)(frame)
    _put(track.stash, frame, state.stash)
    _put(track.tracked, frame, state.tracked)
    for reverse, marked in zip((False, True), state.dirty, strict=True):
        (track.dirty[reverse].add if marked else track.dirty[reverse].discard)(frame)


def _put(table: dict, frame: int, value: object) -> None:
    if value is None:
        table.pop(frame, None)
    else:
        table[frame] = value
