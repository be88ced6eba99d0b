"""The GUI-side handle on the inference worker: its thread, request ids, stale-result filter.

Requests go out as one queued `Signal(object)`; answers come back from the worker thread
and are re-emitted here on the GUI thread only when they still matter.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.gui.worker.engine import Engine, FrameSource
from app.gui.worker.inference_worker import InferenceWorker, supersede_key
from app.gui.worker.jobs import (
    Find,
    Focus,
    FoundInPass,
    FrameMasks,
    JobError,
    LoadFinder,
    LoadModel,
    MaskResult,
    ModelInfo,
    OpenVideo,
    PassFind,
    PendingBook,
    Progress,
    Propagate,
    PropagationSummary,
    RemoveObject,
    RestoreState,
    SaveState,
    SessionInfo,
    SetPrecision,
    SetPrompts,
)

_live_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
# Threads left to finish a model call at quit. Qt aborts the process if a running QThread
# is destroyed, so they are never let go: the app ends its process without them
# (`app.gui.main.end_process`); any other program waits for them as it exits.
_abandoned: list[QThread] = []


@atexit.register
def wait_for_abandoned_threads(timeout_ms: int | None = None) -> None:
    """Wait for threads a closed window left inside a model call (tests, interpreter exit)."""
    for thread in _abandoned:
        if timeout_ms is None:
            thread.wait()
        else:
            thread.wait(timeout_ms)


def running_worker_threads() -> list[QThread]:
    """Worker threads still running; tests fail if any outlive them."""
    return [t for t in _live_threads if t.isRunning()]


class WorkerClient(QObject):
    """GUI-side handle: starts the worker thread, numbers requests, drops stale results.

    Result signals are re-emitted on the GUI thread only when they belong to the latest
    request of their kind, so a slow answer to a superseded click never overwrites a
    newer one.
    """

    _request = Signal(object)
    model_loaded = Signal(object)
    finder_loaded = Signal(object)  # jobs.FinderInfo
    find_ready = Signal(object)  # jobs.FindResult
    session_opened = Signal(object)
    mask_ready = Signal(object)
    frame_ready = Signal(object)
    propagation_progress = Signal(object)
    propagation_finished = Signal(object)
    found_in_pass = Signal(object)  # pass_finding.FoundInPass, of the current propagation
    job_failed = Signal(object)
    stats_changed = Signal(object)
    busy_changed = Signal(bool)
    state_report = Signal(object)
    activity_changed = Signal(object)  # jobs.Activity: what the worker is doing now
    prompts_sent = Signal(int, int)  # request id, frame: a prompt change waits in the queue
    request_finished = Signal(int)  # request id, handled or skipped

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending = PendingBook()
        self._cancel = threading.Event()
        self._next_id = 1
        self._session_floor = 0
        self._propagation_id: int | None = None
        self._outstanding: set[int] = set()
        self._find_cancels: dict[int, threading.Event] = {}  # Finds sent and not answered
        self._thread = QThread()
        self._thread.setObjectName("masklet-inference")
        _live_threads.add(self._thread)
        self._worker = InferenceWorker(engine=engine, pending=self._pending, cancel=self._cancel)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._request.connect(self._worker._on_request)
        self._connect_results()
        self._thread.start()

    def _connect_results(self) -> None:
        w = self._worker
        w.model_loaded.connect(self._on_model_loaded)
        w.finder_loaded.connect(self.finder_loaded)
        w.find_ready.connect(self.find_ready)
        w.session_opened.connect(self._on_session_opened)
        w.mask_ready.connect(self._on_mask_ready)
        w.frame_ready.connect(self._on_frame_ready)
        w.propagation_progress.connect(self._on_progress)
        w.propagation_finished.connect(self._on_propagation_finished)
        w.found_in_pass.connect(self._on_found_in_pass)
        w.job_failed.connect(self._on_job_failed)
        w.stats_changed.connect(self.stats_changed)
        w.state_report.connect(self.state_report)
        w.activity_changed.connect(self.activity_changed)
        w.request_done.connect(self._finish)

    # ---- requests --------------------------------------------------------------------------
    def _send(self, make: Callable[[int], Any], *, track: bool = True) -> int:
        request_id = self._next_id
        self._next_id += 1
        request = make(request_id)
        with self._pending.lock:
            self._pending.count += 1
            key = supersede_key(request)
            if key is not None:
                self._pending.latest[key] = request_id
            self._pending.queue.append(request)
        if track:
            self._outstanding.add(request_id)
            if len(self._outstanding) == 1:
                self.busy_changed.emit(True)
        self._request.emit(request)
        return request_id

    def load_model(self, checkpoint: str, device: str, image_size: int | None = None) -> int:
        return self._send(lambda i: LoadModel(i, checkpoint, device, image_size))

    def load_finder(self, checkpoint: str, device: str) -> int:
        """Load SAM 3's finder beside the tracker (`finder_loaded` or `job_failed` answers)."""
        return self._send(lambda i: LoadFinder(i, checkpoint, device))

    def find(
        self,
        frame: int,
        phrase: str | None,
        boxes: np.ndarray | None = None,
        box_labels: np.ndarray | None = None,
    ) -> int:
        """Find on `frame` (`find_ready` answers, or `job_failed`); Esc: `cancel_find`."""
        cancel = threading.Event()
        request_id = self._send(lambda i: Find(i, frame, phrase, boxes, box_labels, cancel))
        self._find_cancels[request_id] = cancel
        return request_id

    def cancel_find(self) -> None:
        """Stop every Find sent: a queued one never runs, a running one within a second."""
        for cancel in self._find_cancels.values():
            cancel.set()

    def open_video(self, open_source: Callable[[], FrameSource]) -> int:
        self.cancel()
        request_id = self._send(lambda i: OpenVideo(i, open_source))
        self._session_floor = request_id
        return request_id

    def set_prompts(
        self,
        frame: int,
        obj_id: int,
        points: list[tuple[float, float, int]],
        box: tuple[float, float, float, float] | None,
        *,
        mask_rle: bytes | None = None,
    ) -> int:
        # A running propagation takes it between two frames (`app.gui.worker.live_edits`).
        xy = np.array([(x, y) for x, y, _ in points], dtype=np.float32).reshape(-1, 2)
        labels = np.array([label for _, _, label in points], dtype=np.int32)
        box_arr = None if box is None else np.array(box, dtype=np.float32)
        request_id = self._send(
            lambda i: SetPrompts(i, frame, obj_id, xy, labels, box_arr, mask_rle)
        )
        self.prompts_sent.emit(request_id, frame)
        return request_id

    def propagate(self, start: int, direction: str, find: PassFind | None = None) -> int:
        """Propagate from `start`; with `find`, finding new instances on the way."""
        if direction not in ("forward", "backward", "both"):
            raise ValueError(f"direction must be forward, backward or both, got {direction!r}")
        self.cancel()
        self._propagation_id = self._send(lambda i: Propagate(i, start, direction, find))
        return self._propagation_id

    def remove_object(self, obj_id: int) -> int:
        return self._send(lambda i: RemoveObject(i, obj_id))

    def set_precision(self, precision: str) -> None:
        """auto, exact or fast from the next request on (not a busy-making job: instant)."""
        self._send(lambda i: SetPrecision(i, precision), track=False)

    def save_state(
        self, folder: str, video_path: str, budget_bytes: int, *, explicit: bool = False
    ) -> int:
        """Queue a save of the engine state; never cancels or waits for the running job."""
        return self._send(
            lambda i: SaveState(i, folder, video_path, budget_bytes, explicit), track=False
        )

    def restore_state(
        self, folder: str, video_path: str, prompts: frozenset[tuple[int, int]]
    ) -> int:
        return self._send(lambda i: RestoreState(i, folder, video_path, prompts), track=False)

    def focus(self, frame: int) -> None:
        self._send(lambda i: Focus(i, frame), track=False)

    def cancel(self) -> None:
        """Stop a running propagation after the frame in progress; safe from any thread."""
        if self._propagation_id is not None:
            self._cancel.set()

    @property
    def is_busy(self) -> bool:
        return bool(self._outstanding)

    @property
    def is_propagating(self) -> bool:
        return self._propagation_id is not None

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Cancel, stop the thread and wait for it, at most `wait_ms`; True once it ended.

        A model call in flight (encoding a frame: seconds on a CPU) cannot be interrupted,
        so a closing app waits briefly and then leaves the thread to it."""
        self._cancel.set()
        self.cancel_find()
        self._thread.quit()
        if wait_ms is None:
            return bool(self._thread.wait())
        if self._thread.wait(max(wait_ms, 0)):
            return True
        _abandoned.append(self._thread)
        return False

    # ---- results ---------------------------------------------------------------------------
    @Slot(int)
    def _finish(self, request_id: int) -> None:
        self._find_cancels.pop(request_id, None)
        self.request_finished.emit(request_id)
        if request_id in self._outstanding:
            self._outstanding.discard(request_id)
            if not self._outstanding:
                self.busy_changed.emit(False)

    def _current(self, request_id: int) -> bool:
        return request_id >= self._session_floor

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_loaded.emit(info)

    @Slot(object)
    def _on_session_opened(self, info: SessionInfo) -> None:
        if self._current(info.request_id):
            self.session_opened.emit(info)

    @Slot(object)
    def _on_mask_ready(self, result: MaskResult) -> None:
        key = ("prompts", result.frame, result.obj_id)
        with self._pending.lock:
            latest = self._pending.latest.get(key, result.request_id)
        if self._current(result.request_id) and latest == result.request_id:
            self.mask_ready.emit(result)

    @Slot(object)
    def _on_frame_ready(self, result: FrameMasks) -> None:
        if result.request_id == self._propagation_id:
            self.frame_ready.emit(result)

    @Slot(object)
    def _on_progress(self, progress: Progress) -> None:
        if progress.request_id == self._propagation_id:
            self.propagation_progress.emit(progress)

    @Slot(object)
    def _on_propagation_finished(self, summary: PropagationSummary) -> None:
        if summary.request_id == self._propagation_id:
            self._propagation_id = None
            self.propagation_finished.emit(summary)

    @Slot(object)
    def _on_found_in_pass(self, found: FoundInPass) -> None:
        # Not after another video was opened: the objects would land in its document.
        if found.request_id == self._propagation_id and self._current(found.request_id):
            self.found_in_pass.emit(found)

    @Slot(object)
    def _on_job_failed(self, error: JobError) -> None:
        if error.request_id == self._propagation_id:
            self._propagation_id = None
            self.propagation_finished.emit(PropagationSummary(error.request_id, 0, True))
        self.job_failed.emit(error)
