"""The annotation document: objects, prompts and masks of one video, with change signals.

Widgets never talk to each other about annotation state; they read the document and
subscribe to its signals (napari's layer/controls split). Undo commands
(`app.gui.document.commands`) are the only writers of objects and prompts; the session
controller is the only writer of masks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.gui.document.stale_masks import StaleMarks
from app.project.labels import Label
from app.project.mask_store import MaskStore

# Distinct, saturated colours that read well over video; cycled for new objects.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64),
    (64, 160, 255),
    (255, 200, 0),
    (80, 220, 100),
    (220, 90, 255),
    (255, 140, 40),
    (0, 220, 220),
    (255, 105, 180),
    (170, 255, 60),
    (140, 120, 255),
)


class MaskState(IntEnum):
    """What is known about one object on one frame."""

    NONE = 0
    MASK = 1
    ABSENT = 2


@dataclass(frozen=True)
class MaskletObject:
    obj_id: int
    name: str
    category: str = ""
    color: tuple[int, int, int] = PALETTE[0]
    visible: bool = True
    finder_score: float | None = None  # for an object found by phrase (app/project/found.py)


@dataclass(frozen=True)
class FramePrompts:
    """The clicks and box, or a mask, of one object on one frame, in video pixel coordinates.

    A mask prompt (imported labels) is kept as `encode_rle` bytes rather than an array, so a
    long video's keyframes stay compact; the engine takes a mask alone, never with clicks.
    """

    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: bytes | None = None  # encode_rle of an (H, W) bool mask at video resolution

    def is_empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None


@dataclass(frozen=True)
class ObjectSnapshot:
    """Everything the document holds about one object, for undoing its deletion."""

    obj: MaskletObject
    row: int
    prompts: dict[int, FramePrompts]
    masks: dict[int, bytes | None]  # RLE bytes as the mask store keeps them; None = absent
    quality: dict[int, tuple[float, float]] = field(default_factory=dict)  # (iou, score)


class AnnotationDocument(QObject):
    """Objects, per-(frame, object) prompts and masks, the current frame and active object."""

    video_changed = Signal()
    objects_changed = Signal()
    object_changed = Signal(int)
    object_removed = Signal(int)
    prompts_changed = Signal(int, int)
    masks_changed = Signal(int)
    current_frame_changed = Signal(int)
    active_object_changed = Signal(int)
    labels_changed = Signal()
    stale_changed = Signal()  # masks marked as an earlier model's, or their marks accepted

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.video_path: str | None = None
        self.num_frames = 0
        self.video_size: tuple[int, int] = (0, 0)
        self.fps = 25.0
        self._objects: dict[int, MaskletObject] = {}
        self._labels: tuple[Label, ...] = ()
        self._prompts: dict[tuple[int, int], FramePrompts] = {}
        self.store = MaskStore((1, 1))
        self._states: dict[int, np.ndarray] = {}
        # Masks an earlier model computed (`app.gui.document.stale_masks`); a new mask clears its
        # mark.
        self.stale = StaleMarks()
        # The loaded model's identity, which the unmarked masks come from; "" = unknown.
        # It outlives `reset`: it names the model, not the video.
        self.mask_model = ""
        self._current = 0
        self._active: int | None = None
        self._ids = itertools.count(1)

    # ---- video -----------------------------------------------------------------------------
    def reset(
        self, *, video_path: str | None, num_frames: int, video_size: tuple[int, int], fps: float
    ) -> None:
        """Start a fresh document for a video; all objects, prompts and masks are dropped."""
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        self.video_path = video_path
        self.num_frames = num_frames
        self.video_size = video_size
        self.fps = fps if fps > 0 else 25.0
        self._objects.clear()
        self._labels = ()
        self._prompts.clear()
        self.store = MaskStore(_store_size(video_size), num_frames=max(num_frames, 1))
        self._states.clear()
        self.stale.reset(num_frames)
        self._current = 0
        self._active = None
        self._ids = itertools.count(1)
        self.video_changed.emit()
        self.objects_changed.emit()
        self.labels_changed.emit()
        self.current_frame_changed.emit(0)
        self.active_object_changed.emit(-1)

    # ---- navigation ------------------------------------------------------------------------
    @property
    def current_frame(self) -> int:
        return self._current

    def set_current_frame(self, frame: int) -> None:
        frame = int(np.clip(frame, 0, max(self.num_frames - 1, 0)))
        if frame != self._current:
            self._current = frame
            self.current_frame_changed.emit(frame)

    @property
    def active_object(self) -> int | None:
        return self._active

    def set_active_object(self, obj_id: int | None) -> None:
        if obj_id is not None and obj_id not in self._objects:
            raise ValueError(f"no object with id {obj_id}")
        if obj_id != self._active:
            self._active = obj_id
            self.active_object_changed.emit(-1 if obj_id is None else obj_id)

    # ---- objects ---------------------------------------------------------------------------
    def objects(self) -> list[MaskletObject]:
        return list(self._objects.values())

    def object(self, obj_id: int) -> MaskletObject:
        try:
            return self._objects[obj_id]
        except KeyError:
            raise ValueError(f"no object with id {obj_id}") from None

    def has_object(self, obj_id: int) -> bool:
        return obj_id in self._objects

    def next_object_id(self) -> int:
        """A fresh id, never used before in this document."""
        obj_id = next(self._ids)
        while obj_id in self._objects:
            obj_id = next(self._ids)
        return obj_id

    def default_object(self, obj_id: int) -> MaskletObject:
        color = PALETTE[(obj_id - 1) % len(PALETTE)]
        return MaskletObject(obj_id, f"object {obj_id}", "", color, True)

    def insert_object(self, obj: MaskletObject, row: int | None = None) -> None:
        if obj.obj_id in self._objects:
            raise ValueError(f"object id {obj.obj_id} already exists")
        items = list(self._objects.items())
        row = len(items) if row is None else max(0, min(row, len(items)))
        items.insert(row, (obj.obj_id, obj))
        self._objects = dict(items)
        self._states[obj.obj_id] = np.zeros(self.num_frames, dtype=np.int8)
        self.stale.add(obj.obj_id)
        self.objects_changed.emit()

    def update_object(self, obj_id: int, **changes: object) -> MaskletObject:
        """Change name, category, colour or visibility; returns the previous value."""
        old = self.object(obj_id)
        self._objects[obj_id] = replace(old, **changes)
        self.object_changed.emit(obj_id)
        if "visible" in changes or "color" in changes:
            # Only the current frame's overlay is on screen; others rebuild when shown.
            self.masks_changed.emit(self._current)
        return old

    # ---- labels ----------------------------------------------------------------------------
    def labels(self) -> tuple[Label, ...]:
        """The project's label list, in the user's order (see app/project/labels.py)."""
        return self._labels

    def set_labels(self, labels: tuple[Label, ...]) -> tuple[Label, ...]:
        """Replace the label list; returns the previous one. Undo commands are its writers."""
        names = [label.name for label in labels]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("label names must be unique and not empty")
        old, self._labels = self._labels, tuple(labels)
        if old != self._labels:
            self.labels_changed.emit()
        return old

    def row_of(self, obj_id: int) -> int:
        return list(self._objects).index(obj_id)

    def snapshot_object(self, obj_id: int) -> ObjectSnapshot:
        obj = self.object(obj_id)
        prompts = {f: p for (f, o), p in self._prompts.items() if o == obj_id}
        state = self._states[obj_id]
        masks = {int(f): self.store.encoded(int(f), obj_id) for f in np.flatnonzero(state)}
        quality = {f: self.store.quality.get(f, obj_id) for f in masks}
        return ObjectSnapshot(obj, self.row_of(obj_id), prompts, masks, quality)

    def remove_object(self, obj_id: int) -> ObjectSnapshot:
        snap = self.snapshot_object(obj_id)
        del self._objects[obj_id]
        for frame in snap.prompts:
            del self._prompts[(frame, obj_id)]
        self.store.remove_object(obj_id)
        del self._states[obj_id]
        self.stale.remove(obj_id)
        self.object_removed.emit(obj_id)
        if self._active == obj_id:
            self._active = None
            self.active_object_changed.emit(-1)
        self.objects_changed.emit()
        self.masks_changed.emit(self._current)
        return snap

    def restore_object(self, snap: ObjectSnapshot) -> None:
        self.insert_object(snap.obj, snap.row)
        for frame, prompts in snap.prompts.items():
            self._prompts[(frame, snap.obj.obj_id)] = prompts
        obj_id = snap.obj.obj_id
        for frame, data in snap.masks.items():
            self.store.set_encoded(frame, obj_id, data or b"", present=data is not None)
            self._states[obj_id][frame] = MaskState.ABSENT if data is None else MaskState.MASK
            if frame in snap.quality:
                self.store.quality.set_confidence(frame, obj_id, *snap.quality[frame])
        self.masks_changed.emit(self._current)
        for frame in snap.prompts:
            self.prompts_changed.emit(frame, snap.obj.obj_id)

    # ---- prompts ---------------------------------------------------------------------------
    def prompts(self, frame: int, obj_id: int) -> FramePrompts:
        return self._prompts.get((frame, obj_id), FramePrompts())

    def prompts_at(self, frame: int) -> dict[int, FramePrompts]:
        return {o: p for (f, o), p in self._prompts.items() if f == frame}

    def all_prompts(self) -> dict[tuple[int, int], FramePrompts]:
        return dict(self._prompts)

    def set_prompts(self, frame: int, obj_id: int, prompts: FramePrompts) -> FramePrompts:
        """Replace one (frame, object)'s prompts; returns the previous ones."""
        self.object(obj_id)
        old = self.prompts(frame, obj_id)
        if prompts.is_empty():
            self._prompts.pop((frame, obj_id), None)
        else:
            self._prompts[(frame, obj_id)] = prompts
        self.prompts_changed.emit(frame, obj_id)
        return old

    def keyframes(self, obj_id: int) -> list[int]:
        return sorted(f for (f, o) in self._prompts if o == obj_id)

    def all_keyframes(self) -> list[int]:
        return sorted({f for (f, _) in self._prompts})

    # ---- masks -----------------------------------------------------------------------------
    def set_mask(
        self,
        frame: int,
        obj_id: int,
        mask: np.ndarray | None,
        *,
        confidence: tuple[float, float] | None = None,
    ) -> None:
        """Store a mask (H, W) bool, or None for "predicted absent"; ignores deleted objects.

        `confidence` is the engine's (predicted IoU, score) of a computed mask; without it
        (a mask the user made) the figures are unknown."""
        if obj_id not in self._objects:
            return
        self._store_mask(frame, obj_id, mask)
        if confidence is not None:
            self.store.quality.set_confidence(frame, obj_id, *confidence)
        self.masks_changed.emit(frame)

    def set_frame_masks(
        self,
        frame: int,
        masks: dict[int, np.ndarray | None],
        quality: dict[int, tuple[float, float]] | None = None,
    ) -> None:
        """Store several objects' results for one frame with a single change signal;
        `quality` holds the engine's (predicted IoU, score) per object."""
        quality = quality or {}
        for obj_id, mask in masks.items():
            if obj_id in self._objects:
                self._store_mask(frame, obj_id, mask)
                if obj_id in quality:
                    self.store.quality.set_confidence(frame, obj_id, *quality[obj_id])
        self.masks_changed.emit(frame)

    def set_encoded_masks(
        self,
        masks: dict[tuple[int, int], bytes],
        quality: dict[tuple[int, int], tuple[float, float]] | None = None,
    ) -> None:
        """Store present masks already in `encode_rle` form, keyed (frame, obj_id); one signal.
        `quality` holds the engine's (predicted IoU, score) of those that have them."""
        quality = quality or {}
        for (frame, obj_id), data in masks.items():
            if obj_id in self._objects and 0 <= frame < self.num_frames:
                self.store.set_encoded(frame, obj_id, data, present=True)
                self._states[obj_id][frame] = MaskState.MASK
                self.stale.clear(frame, obj_id)
                if (frame, obj_id) in quality:
                    self.store.quality.set_confidence(frame, obj_id, *quality[(frame, obj_id)])
        self.masks_changed.emit(self._current)

    def _store_mask(self, frame: int, obj_id: int, mask: np.ndarray | None) -> None:
        if not 0 <= frame < self.num_frames:
            raise ValueError(f"frame {frame} outside 0..{self.num_frames - 1}")
        present = mask is not None and bool(mask.any())
        self.store.set(frame, obj_id, mask if present else None, present=present)
        self._states[obj_id][frame] = MaskState.MASK if present else MaskState.ABSENT
        self.stale.clear(frame, obj_id)

    def clear_mask(self, frame: int, obj_id: int) -> None:
        if obj_id in self._objects:
            self.store.clear_frame(frame, obj_id)
            self._states[obj_id][frame] = MaskState.NONE
            self.stale.clear(frame, obj_id)
            self.masks_changed.emit(frame)

    def mask(self, frame: int, obj_id: int) -> np.ndarray | None:
        return self.store.get(frame, obj_id)

    def mask_state(self, frame: int, obj_id: int) -> MaskState:
        return MaskState(int(self._states[obj_id][frame]))

    def masks_at(self, frame: int) -> dict[int, np.ndarray]:
        """Visible and hidden objects' masks on one frame, in list order."""
        found = self.store.objects_at(frame)
        return {o: found[o] for o in self._objects if o in found}

    def state_track(self, obj_id: int) -> np.ndarray:
        """(num_frames,) int8 of `MaskState` values; read-only view for painting."""
        view = self._states[obj_id].view()
        view.flags.writeable = False
        return view

    def adopt_store(self, store: MaskStore) -> None:
        """Take over a loaded mask store (a project); states follow its entries."""
        if store.video_size != _store_size(self.video_size):
            raise ValueError(f"mask store size {store.video_size} != video {self.video_size}")
        self.store = store
        for obj_id, track in self._states.items():
            track[:] = MaskState.NONE
            for frame in store.frames(obj_id):
                if frame < self.num_frames:
                    present = store.status(frame, obj_id) == "present"
                    track[frame] = MaskState.MASK if present else MaskState.ABSENT
        self.masks_changed.emit(self._current)
        self.objects_changed.emit()


def _store_size(video_size: tuple[int, int]) -> tuple[int, int]:
    # The store rejects empty sizes; a document without a video has nothing to store anyway.
    return (max(video_size[0], 1), max(video_size[1], 1))
