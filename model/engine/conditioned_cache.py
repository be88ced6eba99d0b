"""Memory-conditioned features of recently tracked frames, kept for correction clicks.

A correction click on a tracked frame runs the model on that frame again with the
same memories as tracking did, plus the click. Memory attention (about 1 s a frame at
image size 1024 on a CPU) then recomputes exactly what tracking computed; only the
prompt encoder and mask decoder (tens of ms) see the click. This cache keeps memory
attention's output per (object, frame) so a click there runs only the heads.

An entry is valid only for the very memories it was computed from: it keeps
references to the memory features and object pointers it read, with their temporal
positions and distances, and matches a later lookup only if the memory selection
returns the same tensor objects in the same places. Every change of a frame's output
in the session (re-tracking, a prompt's memory being encoded, a restored or spilled
output read back) makes new tensor objects, so a stale entry can never match; holding
the references also keeps their ids from being reused. A spilled memory read back
from disk is a new object too: a miss there only costs the recomputation.

Bounded per object (the frames tracked last, where corrections happen) and in bytes:
an entry is (1, 256, 64, 64) float32 = 4 MiB at image size 1024, so the defaults
(16 frames per object, 1 GiB) keep the last 16 frames of up to 16 objects, and fewer
per object beyond that, least recently used first out. (256 MiB, 4 objects' worth, made
clicks with 10 objects miss: 1.4 to 2 s at p95 instead of about 60 ms.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from model.sam2.types import Memory

DEFAULT_FRAMES_PER_OBJECT = 16
DEFAULT_MAX_BYTES = 1 << 30

Memories = Sequence[tuple[int, Memory]]
Pointers = Sequence[tuple[int, torch.Tensor]]


@dataclass(frozen=True)
class _Entry:
    positions: tuple[tuple[int, ...], tuple[int, ...], int]  # t_pos, distances, max_pointers
    inputs: tuple[torch.Tensor, ...]  # the memory tensors read, by identity
    fused: torch.Tensor  # (1, C, h, w)

    @property
    def nbytes(self) -> int:
        return self.fused.numel() * self.fused.element_size()


def _positions(memories: Memories, pointers: Pointers, max_pointers: int):
    return (tuple(p for p, _ in memories), tuple(d for d, _ in pointers), max_pointers)


def _inputs(memories: Memories, pointers: Pointers) -> tuple[torch.Tensor, ...]:
    mems = [t for _, m in memories for t in (m.features, m.obj_ptr)]
    return (*mems, *(p for _, p in pointers))


class ConditionedCache:
    """(object, frame) -> memory attention's output for the memories it was computed from."""

    def __init__(
        self,
        *,
        frames_per_object: int = DEFAULT_FRAMES_PER_OBJECT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if frames_per_object < 0 or max_bytes < 0:
            raise ValueError("frames_per_object and max_bytes must be >= 0")
        self.frames_per_object = frames_per_object
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, int], _Entry] = OrderedDict()
        self._per_object: dict[int, OrderedDict[int, None]] = {}
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, obj_id: int, frame: int, memories: Memories, pointers: Pointers, max_pointers: int
    ) -> torch.Tensor | None:
        """The cached (1, C, h, w) output, or None unless computed from exactly these memories."""
        entry = self._entries.get((obj_id, frame))
        if entry is None:
            return None
        inputs = _inputs(memories, pointers)
        same = entry.positions == _positions(memories, pointers, max_pointers) and len(
            entry.inputs
        ) == len(inputs)
        if not same or any(a is not b for a, b in zip(entry.inputs, inputs, strict=True)):
            self._remove(obj_id, frame)
            return None
        self._entries.move_to_end((obj_id, frame))
        return entry.fused

    def put(
        self,
        obj_id: int,
        frame: int,
        memories: Memories,
        pointers: Pointers,
        max_pointers: int,
        fused: torch.Tensor,
    ) -> None:
        """Keep a (1, C, h, w) output (copied, so a batch it is a view of can be freed)."""
        if fused.shape[0] != 1:
            raise ValueError(f"one object's features expected, got batch {fused.shape[0]}")
        self._remove(obj_id, frame)
        entry = _Entry(
            positions=_positions(memories, pointers, max_pointers),
            inputs=_inputs(memories, pointers),
            fused=fused.detach().clone(),
        )
        if self.frames_per_object == 0 or entry.nbytes > self.max_bytes:
            return
        self._entries[(obj_id, frame)] = entry
        self._bytes += entry.nbytes
        frames = self._per_object.setdefault(obj_id, OrderedDict())
        frames[frame] = None
        while len(frames) > self.frames_per_object:
            self._remove(obj_id, next(iter(frames)))
        while self._bytes > self.max_bytes:
            self._remove(*next(iter(self._entries)))

    def forget_object(self, obj_id: int) -> None:
        for frame in list(self._per_object.get(obj_id, ())):
            self._remove(obj_id, frame)
        self._per_object.pop(obj_id, None)

    def _remove(self, obj_id: int, frame: int) -> None:
        entry = self._entries.pop((obj_id, frame), None)
        if entry is not None:
            self._bytes -= entry.nbytes
        self._per_object.get(obj_id, OrderedDict()).pop(frame, None)
