"""Marks the masks an earlier model computed when the model changes; accepting them.

Model > Choose Model and Model > Input Size load another model into the worker. Its
`ModelInfo.identity` (weights and input size; not device or precision, which leave the
masks as they are) is compared with the identity the document's masks came from: where
they differ, every mask the model computed (those with a predicted IoU; drawn, painted
and imported masks have none and stay unmarked) is marked in `AnnotationDocument.stale`.
The timeline hatches them. A mask the new model computes over one clears its mark;
Model > Accept Previous Model's Masks clears all marks as one undo step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QUndoCommand, QUndoStack

from app.gui.document.annotations import AnnotationDocument, MaskState
from app.gui.document.stale_masks import MARKS_KEY, MODEL_KEY, describe_model
from app.gui.worker.jobs import ModelInfo
from app.project.quality import SCORE

_MESSAGE_MS = 15_000


def mark_model_computed(doc: AnnotationDocument) -> int:
    """Mark every mask (and "absent") the engine computed; returns how many are marked."""
    n = doc.num_frames
    for obj in doc.objects():
        computed = np.isfinite(doc.store.quality.column(obj.obj_id, SCORE, n))
        computed &= doc.state_track(obj.obj_id) != MaskState.NONE
        doc.stale.mark(obj.obj_id, computed)
    doc.stale_changed.emit()
    return doc.stale.count()


def stale_settings(doc: AnnotationDocument) -> dict:
    """The project settings entries that keep the marks (see `app.gui.document.stale_masks`)."""
    return {MODEL_KEY: doc.mask_model, MARKS_KEY: doc.stale.to_json()}


def load_stale_settings(doc: AnnotationDocument, settings: dict) -> None:
    """Take a just-opened project's marks and mask model (none for older projects)."""
    model = settings.get(MODEL_KEY)
    doc.mask_model = model if isinstance(model, str) else ""
    doc.stale.load_json(settings.get(MARKS_KEY))
    doc.stale_changed.emit()


class AcceptStaleCommand(QUndoCommand):
    """Keep the earlier model's masks as they are: clear their marks (undo marks them again)."""

    def __init__(self, doc: AnnotationDocument) -> None:
        super().__init__("Accept previous model's masks")
        self._doc = doc
        self._marks = doc.stale.snapshot()

    def redo(self) -> None:
        self._doc.stale.restore({})
        self._doc.stale_changed.emit()

    def undo(self) -> None:
        self._doc.stale.restore(self._marks)
        self._doc.stale_changed.emit()


class StaleMaskMarks(QObject):
    """Compares each loaded model with the masks' model and marks; owns the accept action."""

    def __init__(
        self,
        document: AnnotationDocument,
        undo_stack: QUndoStack,
        show_status: Callable[[str, int], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._undo = undo_stack
        self._show = show_status
        self._loaded = ""  # identity of the model in the worker; "" before one has loaded
        self.accept_action = QAction("&Accept Previous Model's Masks", self)
        self.accept_action.setToolTip(
            "Keep the masks hatched in the timeline (computed by the model loaded before) "
            "as they are and remove their marks; undo brings the marks back"
        )
        self.accept_action.setEnabled(False)
        self.accept_action.triggered.connect(self.accept)
        document.stale_changed.connect(self._on_stale_changed)
        document.masks_changed.connect(lambda _frame: self._on_stale_changed())
        document.video_changed.connect(self._on_stale_changed)

    def on_model_loaded(self, info: ModelInfo) -> None:
        self._loaded = info.identity
        self.reconcile()

    def reconcile(self) -> None:
        """After a model load or a project open: mark the masks of a model no longer loaded."""
        doc, loaded = self._doc, self._loaded
        if not loaded:
            return
        previous, doc.mask_model = doc.mask_model, loaded
        if not previous or previous == loaded or doc.num_frames == 0:
            return
        count = mark_model_computed(doc)
        if count:
            self._show(
                f"{count} masks were computed by {describe_model(previous)}: hatched in the "
                "timeline until tracked again, or kept with Model > Accept Previous Model's "
                "Masks",
                _MESSAGE_MS,
            )

    def accept(self) -> None:
        if self._doc.stale.count():
            self._undo.push(AcceptStaleCommand(self._doc))

    def _on_stale_changed(self) -> None:
        self.accept_action.setEnabled(self._doc.stale.count() > 0)
