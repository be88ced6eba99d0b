"""Per-object tracking state: every computed frame's output, with bounded RAM.

Each (object, frame) output is a `FrameOutput`. Its small part stays in RAM for
every frame: the binary mask at video resolution (packed bits), object score and
predicted IoU. Its tensor part (`Tensors`: the low-res mask logits, the memory
features, the object pointer) is what SAM 2's memory selection and correction
clicks read; it stays in RAM for conditioning frames and for the most recently
used `ram_frames` non-conditioning frames, which cover the window the memory
selection reads while tracking (num_maskmem frames and max_obj_ptrs pointers).
Older tensor parts are written to an anonymous temporary file (the disk, not the
process's memory) and read back byte-exact when a re-propagation or a correction
click needs them again. Nothing is ever approximated or dropped, so results equal
those of a session that keeps everything in RAM, like the reference does.
"""

from __future__ import annotations

import itertools
import secrets
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from model.engine.mask_store import PackedMask
from model.sam2.memory_selection import MemoryPlan
from model.sam2.types import Memory


@dataclass(frozen=True)
class Tensors:
    """The part of a frame output the model reads back; all (1, ...) on one device."""

    logits: torch.Tensor  # (1, 1, 4h, 4w) float32 low-res mask logits
    obj_ptr: torch.Tensor  # (1, C) float32
    score: torch.Tensor  # (1, 1) float32 object score logit
    memory: torch.Tensor | None  # (1, mem_dim, h, w) bfloat16, None until encoded


@dataclass(slots=True)
class FrameOutput:
    """One object's result on one frame."""

    mask: PackedMask
    score: float
    iou: float
    is_cond: bool
    tensors: Tensors | None = None  # None while spilled to disk
    spill_slot: int | None = None
    # Names this exact output for the state store (`model.engine.state_store`): saves
    # skip outputs already stored under the same token. Set by `MemoryBank.put`.
    token: str | None = None
    # A restored output not read yet: reads its tensors from the state store.
    loader: Callable[[torch.device], Tensors] | None = None


class SpillFile:
    """Fixed-size slots of raw tensor bytes in an anonymous temporary file."""

    def __init__(self) -> None:
        # Lives as long as the session; the OS deletes it when closed or on exit.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._layout: list[tuple[tuple[int, ...], torch.dtype]] | None = None
        self._slot_bytes = 0
        self._num_slots = 0
        self._free: list[int] = []

    def write(self, tensors: Tensors) -> int:
        parts = [tensors.logits, tensors.obj_ptr, tensors.score, tensors.memory]
        if any(p is None for p in parts):
            raise ValueError("only outputs with an encoded memory can be spilled")
        layout = [(tuple(p.shape), p.dtype) for p in parts]
        if self._layout is None:
            self._layout = layout
            self._slot_bytes = sum(p.numel() * p.element_size() for p in parts)
        assert layout == self._layout, "all spilled outputs share one layout"
        data = b"".join(_raw_bytes(p) for p in parts)
        slot = self._free.pop() if self._free else self._new_slot()
        self._file.seek(slot * self._slot_bytes)
        self._file.write(data)
        return slot

    def read(self, slot: int, device: torch.device) -> Tensors:
        assert self._layout is not None
        self._file.seek(slot * self._slot_bytes)
        data = self._file.read(self._slot_bytes)
        out, offset = [], 0
        for shape, dtype in self._layout:
            size = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
            raw = torch.frombuffer(bytearray(data[offset : offset + size]), dtype=torch.uint8)
            out.append(raw.view(dtype).reshape(shape).to(device))
            offset += size
        return Tensors(logits=out[0], obj_ptr=out[1], score=out[2], memory=out[3])

    def free(self, slot: int) -> None:
        self._free.append(slot)

    def _new_slot(self) -> int:
        self._num_slots += 1
        return self._num_slots - 1

    def close(self) -> None:
        self._file.close()


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().contiguous().cpu().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


@dataclass
class ObjectTrack:
    """Prompts and outputs of one object."""

    points: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)  # (1, 1, S, S) prompts
    outputs: dict[int, FrameOutput] = field(default_factory=dict)
    # Prompted frames whose memory is not encoded yet (the reference's "temp" outputs).
    pending: set[int] = field(default_factory=set)
    # The committed outputs those pending ones replaced: (is_cond, tensors, iou).
    # Memory selection keeps reading them until the pending outputs are encoded.
    stash: dict[int, tuple[bool, Tensors, float]] = field(default_factory=dict)
    # Frames tracked by propagation -> whether it ran in reverse.
    tracked: dict[int, bool] = field(default_factory=dict)
    # Per direction (reverse?), frames from which a local re-propagation must start.
    dirty: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})

    def keyframes(self) -> list[int]:
        return sorted(set(self.points) | set(self.masks))


class MemoryBank:
    """Outputs of all objects; keeps at most `ram_frames` non-keyframe tensors per object in RAM."""

    def __init__(self, *, ram_frames: int, device: torch.device) -> None:
        if ram_frames < 1:
            raise ValueError("ram_frames must be >= 1")
        self.ram_frames = ram_frames
        self.device = device
        self._spill = SpillFile()
        self._in_ram: dict[int, OrderedDict[int, None]] = {}
        self._token_prefix = secrets.token_hex(6)
        self._tokens = itertools.count()

    def put(self, obj_id: int, track: ObjectTrack, frame: int, output: FrameOutput) -> None:
        self.drop(obj_id, track, frame)
        if output.token is None:
            output.token = f"{self._token_prefix}{next(self._tokens):x}"
        track.outputs[frame] = output
        if not output.is_cond:
            self._touch(obj_id, track, frame)

    def drop(self, obj_id: int, track: ObjectTrack, frame: int) -> None:
        old = track.outputs.pop(frame, None)
        if old is not None and old.spill_slot is not None:
            self._spill.free(old.spill_slot)
        self._in_ram.get(obj_id, OrderedDict()).pop(frame, None)

    def set_cond(self, obj_id: int, track: ObjectTrack, frame: int, is_cond: bool) -> None:
        """Turn an output into a keyframe one (pinned in RAM) or back."""
        output = track.outputs[frame]
        self.tensors(obj_id, track, frame)
        output.is_cond = is_cond
        ram = self._in_ram.setdefault(obj_id, OrderedDict())
        if is_cond:
            ram.pop(frame, None)
        else:
            self._touch(obj_id, track, frame)

    def tensors(self, obj_id: int, track: ObjectTrack, frame: int) -> Tensors:
        """The tensor part of an output, read back from disk if it was spilled."""
        output = track.outputs[frame]
        if output.tensors is None and output.loader is not None:
            output.tensors, output.loader = output.loader(self.device), None
        elif output.tensors is None:
            assert output.spill_slot is not None
            output.tensors = self._spill.read(output.spill_slot, self.device)
            self._spill.free(output.spill_slot)
            output.spill_slot = None
        if not output.is_cond:
            self._touch(obj_id, track, frame)
        return output.tensors

    def peek(self, output: FrameOutput) -> Tensors:
        """An output's tensors wherever they are, leaving RAM, spill file and store as they are."""
        if output.tensors is not None:
            return output.tensors
        if output.loader is not None:
            return output.loader(torch.device("cpu"))
        assert output.spill_slot is not None
        return self._spill.read(output.spill_slot, torch.device("cpu"))

    def committed(self, obj_id: int, track: ObjectTrack, frame: int):
        """(is_cond, tensors) of the output memory selection sees on a frame, or None."""
        if frame in track.pending:
            stashed = track.stash.get(frame)
            return None if stashed is None else stashed[:2]
        output = track.outputs.get(frame)
        if output is None:
            return None
        return output.is_cond, self.tensors(obj_id, track, frame)

    def cond_frames(self, track: ObjectTrack) -> list[int]:
        """Keyframes with an encoded memory, as the memory selection sees them."""
        frames = {t for t, o in track.outputs.items() if o.is_cond and t not in track.pending}
        frames.update(t for t, entry in track.stash.items() if entry[0])
        return sorted(frames)

    def gather(self, obj_id: int, track: ObjectTrack, plan: MemoryPlan):
        """The memories [(temporal position, Memory)] and pointers [(distance, (1, C))] of a plan.

        Recent frames are read from non-keyframe outputs, or from keyframes the plan
        left out of its conditioning set; missing frames are skipped, as in SAM 2.
        """

        def recent(t: int) -> Tensors | None:
            entry = self.committed(obj_id, track, t)
            if entry is None or (entry[0] and t not in plan.unselected_cond):
                return None
            return entry[1]

        def cond(t: int) -> Tensors:
            return self.committed(obj_id, track, t)[1]

        def memory(x: Tensors) -> Memory:
            return Memory(features=x.memory, obj_ptr=x.obj_ptr)

        memories = [(0, memory(cond(t))) for t in plan.cond]
        memories += [(p, memory(x)) for p, t in plan.recent if (x := recent(t)) is not None]
        pointers = [(d, cond(t).obj_ptr) for d, t in plan.pointer_cond]
        pointers += [(d, x.obj_ptr) for d, t in plan.pointer_recent if (x := recent(t)) is not None]
        return memories, pointers

    def stash(self, obj_id: int, track: ObjectTrack, frame: int) -> None:
        """Keep a committed output aside before a prompt's pending output replaces it."""
        if frame in track.outputs and frame not in track.pending:
            old = track.outputs[frame]
            track.stash[frame] = (old.is_cond, self.tensors(obj_id, track, frame), old.iou)

    def forget_object(self, obj_id: int, track: ObjectTrack) -> None:
        for frame in list(track.outputs):
            self.drop(obj_id, track, frame)
        self._in_ram.pop(obj_id, None)

    @property
    def frames_in_ram(self) -> int:
        return sum(len(r) for r in self._in_ram.values())

    def _touch(self, obj_id: int, track: ObjectTrack, frame: int) -> None:
        ram = self._in_ram.setdefault(obj_id, OrderedDict())
        ram[frame] = None
        ram.move_to_end(frame)
        while len(ram) > self.ram_frames:
            old, _ = ram.popitem(last=False)
            output = track.outputs[old]
            if output.tensors is None or output.tensors.memory is None:
                continue  # nothing to spill yet; never happens for tracked frames
            output.spill_slot = self._spill.write(output.tensors)
            output.tensors = None

    def close(self) -> None:
        self._spill.close()
