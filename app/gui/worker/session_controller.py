"""Keeps the engine session in step with the document, through the worker client.

Prompt edits (from clicks, undo or redo) are sent as the full prompt set of that
(frame, object); masks coming back are written into the document. After a project is
opened or the model is switched, the engine holds no prompts: they are marked unsynced
and re-applied lazily, a frame when it is edited and all of them before propagating.
Prompts whose mask request failed (clicked before any model had loaded) are the
exception: they are sent again as soon as a session opens. Where the prompt is a mask
(painted or imported), the document keeps that mask: the engine's copy of it has been
through the model's low-resolution decoder and would blur painted detail (hair, spokes).

The engine's state can be saved beside a project and restored when it is reopened
(`model.engine.state_store`); the worker does both, this only asks. After a restore the
lazy re-sends are still made: the engine answers a prompt equal to a restored one from
its restored output, so they cost nothing and change nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from app.gui.document.annotations import AnnotationDocument
from app.gui.settings import DEFAULT_STATE_BUDGET_BYTES
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import (
    FrameMasks,
    JobError,
    MaskResult,
    PassFind,
    SessionInfo,
    StateReport,
)


class SessionController(QObject):
    propagation_started = Signal(str)
    session_ready = Signal(object)
    state_status = Signal(str)  # one line about the engine state store, for the status bar

    def __init__(
        self, document: AnnotationDocument, client: WorkerClient, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._client = client
        self._unsynced: set[tuple[int, int]] = set()
        # Prompt sets whose mask request failed (e.g. no model yet): sent again, eagerly,
        # once a session opens, so the user's click gets its mask without clicking again.
        self._failed: set[tuple[int, int]] = set()
        self._sent: dict[int, tuple[int, int]] = {}
        self._muted = False
        self.state_budget_bytes = DEFAULT_STATE_BUDGET_BYTES
        self.last_state_report: StateReport | None = None
        document.prompts_changed.connect(self._on_prompts_changed)
        document.object_removed.connect(self._on_object_removed)
        document.current_frame_changed.connect(self._on_current_frame_changed)
        client.mask_ready.connect(self._on_mask_ready)
        client.frame_ready.connect(self._on_frame_ready)
        client.job_failed.connect(self._on_job_failed)
        client.session_opened.connect(self._on_session_opened)
        client.state_report.connect(self._on_state_report)

    @property
    def unsynced(self) -> set[tuple[int, int]]:
        """(frame, obj_id) prompt sets the engine has not seen yet."""
        return set(self._unsynced)

    def set_muted(self, muted: bool) -> None:
        """While muted (loading a project), prompt changes are only marked unsynced."""
        self._muted = muted

    def mark_all_unsynced(self) -> None:
        self._unsynced = set(self._doc.all_prompts())

    def propagate(self, direction: str, find: PassFind | None = None) -> int:
        """Re-apply unsynced prompts, then propagate from the current frame (finding `find`
        on the way, when given)."""
        self.sync_all()
        request_id = self._client.propagate(self._doc.current_frame, direction, find)
        self.propagation_started.emit(direction)
        return request_id

    def sync_all(self) -> None:
        for frame, obj_id in sorted(self._unsynced):
            if self._doc.has_object(obj_id):
                self._send(frame, obj_id)
        self._unsynced.clear()

    def save_engine_state(self, folder: str, *, explicit: bool = False) -> None:
        """Ask the worker to write the engine state into `folder` after what it is doing."""
        if self._doc.video_path:
            self._client.save_state(
                folder, self._doc.video_path, self.state_budget_bytes, explicit=explicit
            )

    def restore_engine_state(self, folder: str) -> None:
        """Ask the worker to continue from `folder` if it matches this video, model, prompts."""
        if self._doc.video_path:
            prompts = frozenset((obj, frame) for frame, obj in self._doc.all_prompts())
            self._client.restore_state(folder, self._doc.video_path, prompts)

    def _send(self, frame: int, obj_id: int) -> None:
        prompts = self._doc.prompts(frame, obj_id)
        request_id = self._client.set_prompts(
            frame, obj_id, list(prompts.points), prompts.box, mask_rle=prompts.mask
        )
        self._sent[request_id] = (frame, obj_id)
        self._unsynced.discard((frame, obj_id))

    # ---- document events -------------------------------------------------------------------
    @Slot(int, int)
    def _on_prompts_changed(self, frame: int, obj_id: int) -> None:
        if self._muted:
            self._unsynced.add((frame, obj_id))
            return
        if self._doc.prompts(frame, obj_id).is_empty() and self._doc.has_object(obj_id):
            # No prompt means no mask: clear it now rather than after the worker has
            # finished what it is doing (an undone click otherwise lingers for seconds).
            self._doc.clear_mask(frame, obj_id)
        self._send(frame, obj_id)

    @Slot(int)
    def _on_object_removed(self, obj_id: int) -> None:
        self._unsynced = {key for key in self._unsynced if key[1] != obj_id}
        self._failed = {key for key in self._failed if key[1] != obj_id}
        if not self._muted:
            self._client.remove_object(obj_id)

    @Slot(int)
    def _on_current_frame_changed(self, frame: int) -> None:
        self._client.focus(frame)

    # ---- worker results --------------------------------------------------------------------
    @Slot(object)
    def _on_session_opened(self, info: SessionInfo) -> None:
        self.mark_all_unsynced()
        failed, self._failed = sorted(self._failed), set()
        for frame, obj_id in failed:
            if self._doc.has_object(obj_id) and frame < self._doc.num_frames:
                self._send(frame, obj_id)
        self.session_ready.emit(info)

    @Slot(object)
    def _on_state_report(self, report: StateReport) -> None:
        self.last_state_report = report
        if report.message:
            self.state_status.emit(report.message)

    @Slot(object)
    def _on_mask_ready(self, result: MaskResult) -> None:
        self._sent.pop(result.request_id, None)
        if not self._doc.has_object(result.obj_id) or self._mask_prompted(
            result.frame, result.obj_id
        ):
            return
        if result.mask is None:
            # Cleared prompts: the document already shows what goes there, the frame left
            # empty at once or, for an undo, the mask it had before (`SetPromptsCommand`).
            return
        if result.mask.shape == self._doc.video_size:
            confidence = (result.iou, result.score)
            self._doc.set_mask(result.frame, result.obj_id, result.mask, confidence=confidence)

    @Slot(object)
    def _on_frame_ready(self, result: FrameMasks) -> None:
        if 0 <= result.frame < self._doc.num_frames:
            masks = {
                o: m for o, m in result.masks.items() if not self._mask_prompted(result.frame, o)
            }
            quality = {o: q for o, q in result.quality.items() if o in masks}
            self._doc.set_frame_masks(result.frame, masks, quality)

    def _mask_prompted(self, frame: int, obj_id: int) -> bool:
        return self._doc.prompts(frame, obj_id).mask is not None

    @Slot(object)
    def _on_job_failed(self, error: JobError) -> None:
        key = self._sent.pop(error.request_id, None)
        if key is not None:
            self._unsynced.add(key)
            self._failed.add(key)
