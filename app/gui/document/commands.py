"""Undoable edits of the annotation document (QUndoCommand subclasses and builders).

Prompt edits store the whole before/after `FramePrompts` of one (frame, object), so
undo and redo are plain replacements and the engine is simply re-run on that frame. They
also keep what the document showed with each side (mask or its absence, and the engine's
confidence in it), and put it back with the prompts: an undo shows the earlier mask at
once instead of leaving the undone one up until the engine has answered (seconds on a
CPU), and undoing the first edit of a propagated frame brings its propagated mask back
rather than leaving the frame empty (the engine reverts its own copy exactly too:
`model.engine.prompt_history`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from app.gui.document.annotations import (
    AnnotationDocument,
    FramePrompts,
    MaskletObject,
    MaskState,
    ObjectSnapshot,
)

_UNKNOWN = (math.nan, math.nan)


@dataclass(frozen=True)
class ShownMask:
    """What the document shows for one (frame, object): a state, RLE bytes if a mask, and
    the engine's (predicted IoU, score) of it, NaN where unknown (a mask the user made)."""

    state: MaskState
    data: bytes | None = None
    confidence: tuple[float, float] = _UNKNOWN

    @classmethod
    def of(cls, doc: AnnotationDocument, frame: int, obj_id: int) -> ShownMask:
        state = doc.mask_state(frame, obj_id)
        data = doc.store.encoded(frame, obj_id) if state == MaskState.MASK else None
        confidence = _UNKNOWN if state == MaskState.NONE else doc.store.quality.get(frame, obj_id)
        return cls(state, data, confidence)

    def restore(self, doc: AnnotationDocument, frame: int, obj_id: int) -> None:
        if not doc.has_object(obj_id):
            return
        if self.state == MaskState.NONE or (self.state == MaskState.MASK and self.data is None):
            doc.clear_mask(frame, obj_id)
            return
        known = not any(math.isnan(v) for v in self.confidence)
        if self.state == MaskState.MASK:
            assert self.data is not None
            key = (frame, obj_id)
            doc.set_encoded_masks({key: self.data}, {key: self.confidence} if known else None)
        else:
            doc.set_mask(frame, obj_id, None, confidence=self.confidence if known else None)


class SetPromptsCommand(QUndoCommand):
    """Replace one object's prompts on one frame, showing the best known mask for them.

    `shown` is the mask that goes with `new` when it is known up front (a painted mask);
    otherwise the mask on screen when the command is undone is taken for it, for redo.
    The engine's answer to the prompts replaces either when it comes.
    """

    def __init__(
        self,
        doc: AnnotationDocument,
        frame: int,
        obj_id: int,
        new: FramePrompts,
        text: str,
        *,
        shown: ShownMask | None = None,
    ) -> None:
        super().__init__(text)
        self._doc, self._frame, self._obj_id = doc, frame, obj_id
        self._new = new
        self._old = doc.prompts(frame, obj_id)
        self._old_shown = ShownMask.of(doc, frame, obj_id)
        self._new_shown = shown
        self._learn_new = shown is None

    def redo(self) -> None:
        self._apply(self._new, self._new_shown)

    def undo(self) -> None:
        if self._learn_new:
            self._new_shown = ShownMask.of(self._doc, self._frame, self._obj_id)
        self._apply(self._old, self._old_shown)

    def _apply(self, prompts: FramePrompts, shown: ShownMask | None) -> None:
        self._doc.set_prompts(self._frame, self._obj_id, prompts)
        # Show the known mask now rather than the other side's until the engine answers.
        # Emptied prompts leave the frame empty (the session controller clears it) unless
        # this side's mask is known: then it is what was there, propagated or absent.
        if shown is not None:
            shown.restore(self._doc, self._frame, self._obj_id)


class NewObjectCommand(QUndoCommand):
    """Add an object and make it the active one."""

    def __init__(self, doc: AnnotationDocument, obj: MaskletObject) -> None:
        super().__init__(f"New {obj.name}")
        self._doc, self._obj = doc, obj
        self._previous_active = doc.active_object

    def redo(self) -> None:
        self._doc.insert_object(self._obj)
        self._doc.set_active_object(self._obj.obj_id)

    def undo(self) -> None:
        self._doc.remove_object(self._obj.obj_id)
        if self._previous_active is not None and self._doc.has_object(self._previous_active):
            self._doc.set_active_object(self._previous_active)


class DeleteObjectCommand(QUndoCommand):
    """Delete an object with its prompts and masks; undo brings all of them back."""

    def __init__(self, doc: AnnotationDocument, obj_id: int) -> None:
        super().__init__(f"Delete {doc.object(obj_id).name}")
        self._doc, self._obj_id = doc, obj_id
        self._snapshot: ObjectSnapshot | None = None
        self._was_active = doc.active_object == obj_id

    def redo(self) -> None:
        self._snapshot = self._doc.remove_object(self._obj_id)

    def undo(self) -> None:
        assert self._snapshot is not None
        self._doc.restore_object(self._snapshot)
        if self._was_active:
            self._doc.set_active_object(self._obj_id)


class EditObjectCommand(QUndoCommand):
    """Change an object's name, category, colour or visibility."""

    def __init__(self, doc: AnnotationDocument, obj_id: int, text: str, **changes: object) -> None:
        super().__init__(text)
        self._doc, self._obj_id, self._changes = doc, obj_id, changes
        old = doc.object(obj_id)
        self._old = {key: getattr(old, key) for key in changes}

    def redo(self) -> None:
        self._doc.update_object(self._obj_id, **self._changes)

    def undo(self) -> None:
        self._doc.update_object(self._obj_id, **self._old)


class ImportObjectsCommand(QUndoCommand):
    """Add imported objects with a mask prompt (and that mask) on every frame they cover.

    `keyframes` is {obj_id: {frame: encode_rle bytes}}, so the command stays compact for a
    long video. `mute` (the session controller's) is held while redoing, so the engine is
    given the mask prompts lazily, before the next propagation, not hundreds at once.
    """

    def __init__(
        self,
        doc: AnnotationDocument,
        objects: list[MaskletObject],
        keyframes: dict[int, dict[int, bytes]],
        *,
        text: str,
        mute: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__(text)
        self._doc, self._objects, self._keyframes = doc, objects, keyframes
        self._mute = mute or (lambda _muted: None)
        self._previous_active = doc.active_object

    def redo(self) -> None:
        doc = self._doc
        self._mute(True)
        try:
            for obj in self._objects:
                doc.insert_object(obj)
                for frame, data in self._keyframes.get(obj.obj_id, {}).items():
                    doc.set_prompts(frame, obj.obj_id, FramePrompts(mask=data))
            masks = {(f, o): rle for o, per in self._keyframes.items() for f, rle in per.items()}
            doc.set_encoded_masks(masks)
        finally:
            self._mute(False)
        if self._objects:
            doc.set_active_object(self._objects[0].obj_id)

    def undo(self) -> None:
        for obj in reversed(self._objects):
            self._doc.remove_object(obj.obj_id)
        if self._previous_active is not None and self._doc.has_object(self._previous_active):
            self._doc.set_active_object(self._previous_active)


def add_point(
    doc: AnnotationDocument, frame: int, obj_id: int, x: float, y: float, label: int
) -> QUndoCommand:
    old = doc.prompts(frame, obj_id)
    new = FramePrompts((*old.points, (float(x), float(y), int(label))), old.box)
    kind = "positive" if label == 1 else "negative"
    return SetPromptsCommand(doc, frame, obj_id, new, f"Add {kind} point")


def set_box(
    doc: AnnotationDocument, frame: int, obj_id: int, box: tuple[float, float, float, float]
) -> QUndoCommand:
    old = doc.prompts(frame, obj_id)
    new = FramePrompts(old.points, tuple(float(v) for v in box))
    return SetPromptsCommand(doc, frame, obj_id, new, "Draw box")


def remove_nearest_point(
    doc: AnnotationDocument, frame: int, x: float, y: float, radius: float
) -> QUndoCommand | None:
    """Remove the point (of any object) nearest to (x, y) within `radius`, else its box."""
    best: tuple[float, int, int] | None = None
    for obj_id, prompts in doc.prompts_at(frame).items():
        for i, (px, py, _label) in enumerate(prompts.points):
            d = math.hypot(px - x, py - y)
            if d <= radius and (best is None or d < best[0]):
                best = (d, obj_id, i)
    if best is not None:
        _, obj_id, index = best
        old = doc.prompts(frame, obj_id)
        points = old.points[:index] + old.points[index + 1 :]
        return SetPromptsCommand(doc, frame, obj_id, FramePrompts(points, old.box), "Remove point")
    for obj_id, prompts in doc.prompts_at(frame).items():
        if prompts.box is not None and _inside(prompts.box, x, y):
            new = FramePrompts(prompts.points, None)
            return SetPromptsCommand(doc, frame, obj_id, new, "Remove box")
    return None


class ClearFrameCommand(QUndoCommand):
    """Remove every object's prompts on one frame, as one undo step."""

    def __init__(self, doc: AnnotationDocument, frame: int, obj_ids: list[int]) -> None:
        super().__init__(f"Clear prompts on frame {frame}")
        # Kept as Python references rather than Qt children, so their overrides stay alive.
        self._steps = [SetPromptsCommand(doc, frame, o, FramePrompts(), "") for o in obj_ids]

    def redo(self) -> None:
        for step in self._steps:
            step.redo()

    def undo(self) -> None:
        for step in reversed(self._steps):
            step.undo()


def clear_frame(doc: AnnotationDocument, frame: int) -> QUndoCommand | None:
    """The command clearing one frame's prompts, or None when there are none."""
    prompted = list(doc.prompts_at(frame))
    return ClearFrameCommand(doc, frame, prompted) if prompted else None


def _inside(box: tuple[float, float, float, float], x: float, y: float) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= x <= x1 and y0 <= y <= y1
