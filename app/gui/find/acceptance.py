"""Accepted proposals become objects: one undo step, the phrase as their name and category.

The step is an import's (`ImportObjectsCommand` inside `AddLabelsCommand`): new objects
"PHRASE N", category the phrase (added to the label list), the found mask as a mask prompt
on its frame, the finder's score kept on each object. One Ctrl+Z takes all of it back.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QUndoCommand

from app.gui.document.annotations import AnnotationDocument, MaskletObject
from app.gui.document.commands import ImportObjectsCommand
from app.gui.document.label_commands import AddLabelsCommand
from app.gui.find.review import Proposal
from app.project.found import numbered_names
from app.project.labels import DEFAULT_CATEGORY
from app.project.mask_codec import encode_rle
from model.engine.find_association import mask_ious

# A proposal covering an object of its frame more than this (mask IoU) is marked as
# overlapping it and left out of Accept all.
OVERLAP_IOU = 0.5


def accept_command(
    doc: AnnotationDocument,
    frame: int,
    phrase: str | None,
    proposals: list[Proposal],
    mute: Callable[[bool], None] | None = None,
) -> QUndoCommand:
    """The undo step adding `proposals` (found for `phrase` on `frame`) as new objects.

    Objects found by exemplar boxes alone are named "object N" and have no category."""
    base = phrase or DEFAULT_CATEGORY
    names = numbered_names((o.name for o in doc.objects()), base, len(proposals))
    objects: list[MaskletObject] = []
    keyframes: dict[int, dict[int, bytes]] = {}
    for proposal, name in zip(proposals, names, strict=True):
        obj_id = doc.next_object_id()
        color = doc.default_object(obj_id).color
        objects.append(MaskletObject(obj_id, name, phrase or "", color, True, proposal.score))
        keyframes[obj_id] = {frame: encode_rle(proposal.mask.full(doc.video_size))}
    what = f"'{phrase}'" if phrase else "similar"
    count = len(objects)
    text = f"Accept {count} {what} proposal{'s' if count != 1 else ''}"
    command = ImportObjectsCommand(doc, objects, keyframes, text=text, mute=mute)
    return AddLabelsCommand(doc, command, [phrase] if phrase else [])


def overlapped_object(doc: AnnotationDocument, frame: int, proposal: Proposal) -> str:
    """The name of the object of `frame` the proposal's mask overlaps most, if that is
    over `OVERLAP_IOU`; "" for none."""
    masks = doc.masks_at(frame)
    if not masks:
        return ""
    ids = list(masks)
    ious = mask_ious([proposal.mask.full(doc.video_size)], [masks[i] for i in ids])[0]
    best = int(np.argmax(ious))
    return doc.object(ids[best]).name if ious[best] > OVERLAP_IOU else ""


def accepted_phrases(doc: AnnotationDocument) -> list[str]:
    """Every phrase objects of the document were found for, in order of first use."""
    phrases: list[str] = []
    for obj in doc.objects():
        if obj.finder_score is not None and obj.category and obj.category not in phrases:
            phrases.append(obj.category)
    return phrases
