"""The background inference worker: owns the model, the tracking session and its cache.

`InferenceWorker` lives on its own `QThread` (moveToThread). The GUI talks to it only
through `app.gui.worker.client.WorkerClient`: requests come in as one queued
`Signal(object)` carrying a request dataclass; results go back as `Signal(object)`
carrying NumPy arrays the worker has copied and no longer touches. Cancelling is a
`threading.Event` the engine polls between frames, so it takes effect within one frame
and keeps what was computed. Prompts sent during a propagation are applied between two of
its frames, in the order sent (`app.gui.worker.live_edits`, `model.engine.live_pass`).
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.gui.worker.engine import Engine, FrameSource, describe_precision
from app.gui.worker.engine_state import EngineStateKeeper
from app.gui.worker.finding import find_action, finder_in_precision, run_find
from app.gui.worker.jobs import (
    Activity,
    EngineStats,
    Find,
    FinderInfo,
    Focus,
    FrameMasks,
    JobError,
    LoadFinder,
    LoadModel,
    MaskResult,
    ModelInfo,
    OpenVideo,
    PendingBook,
    Propagate,
    PropagationSummary,
    RemoveObject,
    RestoreState,
    SaveState,
    SessionInfo,
    SetPrecision,
    SetPrompts,
)
from app.gui.worker.live_edits import RequestInbox
from app.gui.worker.pass_finding import pass_finder
from app.gui.worker.pass_progress import PassProgress
from app.gui.worker.signal_refcount import pin_booleans
from app.project.mask_codec import decode_rle
from model.engine.live_pass import LivePass

# The worker emits per frame: without this a long propagation aborts the app.
pin_booleans()

# Frames encoded ahead of the current one while idle; behind gets half as many.
PREFETCH_AHEAD = 6

# What each request is, in words, for error messages and the canvas badge.
_ACTIONS: dict[type, str] = {
    LoadModel: "loading the model",
    LoadFinder: "loading the finder",
    Find: "finding",
    OpenVideo: "opening the video",
    SetPrompts: "segmenting",
    Propagate: "propagating",
    RemoveObject: "removing an object",
    Focus: "encoding ahead",
    SetPrecision: "switching precision",
    SaveState: "saving the engine state",
    RestoreState: "restoring the engine state",
}
# Requests that only set something: no activity is reported for them.
_INSTANT = (Focus, SetPrecision, RemoveObject)


class InferenceWorker(QObject):
    """Runs every model call; lives on its own thread and is driven by queued requests."""

    model_loaded = Signal(object)
    finder_loaded = Signal(object)
    find_ready = Signal(object)  # jobs.FindResult
    session_opened = Signal(object)
    mask_ready = Signal(object)
    frame_ready = Signal(object)
    propagation_progress = Signal(object)
    propagation_finished = Signal(object)
    found_in_pass = Signal(object)  # pass_finding.FoundInPass
    job_failed = Signal(object)
    stats_changed = Signal(object)
    state_report = Signal(object)
    activity_changed = Signal(object)
    request_done = Signal(int)

    def __init__(self, *, engine: Engine, pending: PendingBook, cancel: threading.Event) -> None:
        super().__init__()
        self._engine = engine
        self._pending = pending
        self._cancel = cancel
        self._model: Any = None
        self._finder: Any = None  # SAM 3's finder, once one is loaded (app.gui.worker.finding)
        self._finder_file: tuple[str, str] = ("", "")  # its checkpoint and device
        self._variant = ""
        self._device = "cpu"
        self._precision = "auto"
        self._session: Any = None
        self._open_source: Callable[[], FrameSource] | None = None
        self._source: FrameSource | None = None  # the open video's frames, for Find
        self._focus = 0
        self._prefetch_queue: list[int] = []
        self._state = EngineStateKeeper()
        self._activity = Activity(-1, "")

    # ---- dispatch --------------------------------------------------------------------------
    @Slot(object)
    def _on_request(self, request: Any) -> None:
        with self._pending.lock:
            queue = self._pending.queue
            if not queue or queue[0].request_id != request.request_id:
                return  # a propagation took it between two frames (app.gui.worker.live_edits)
            queue.popleft()
            self._pending.count -= 1
            superseded = _is_superseded(self._pending, request)
        if superseded:
            self._skip(request)
        else:
            self._run(request)

    def _run(self, request: Any) -> None:
        if isinstance(request, _INSTANT):
            self._handle(request)  # no model call: nothing to show (Follow sends Focus often)
        else:
            # An edit runs inside a propagation: afterwards the badge goes back to saying so.
            outer = self._activity
            frame = getattr(request, "frame", None)
            self._set_activity(Activity(request.request_id, _ACTIONS[type(request)], frame))
            try:
                self._handle(request)
            finally:
                self._set_activity(outer)
        self.request_done.emit(request.request_id)

    def _set_activity(self, activity: Activity) -> None:
        if activity != self._activity:
            self._activity = activity
            self.activity_changed.emit(activity)

    def _skip(self, request: Any) -> None:
        self.request_done.emit(request.request_id)

    def _handle(self, request: Any) -> None:
        handlers = {
            LoadModel: self._load_model,
            LoadFinder: self._load_finder,
            Find: self._find,
            OpenVideo: self._open_video,
            SetPrompts: self._set_prompts,
            Propagate: self._propagate,
            RemoveObject: self._remove_object,
            Focus: self._set_focus,
            SetPrecision: self._set_precision,
            SaveState: self._save_state,
            RestoreState: self._restore_state,
        }
        action, handler = _ACTIONS[type(request)], handlers[type(request)]
        try:
            handler(request)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the GUI
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.job_failed.emit(
                JobError(request.request_id, action, message, traceback.format_exc())
            )
        self._emit_stats()
        self._schedule_prefetch()

    # ---- handlers --------------------------------------------------------------------------
    def _load_model(self, request: LoadModel) -> None:
        # Load first: a bad checkpoint must leave the working model and session in place.
        # Only a chosen size is passed, so loaders that know no sizes keep working.
        size = {} if request.image_size is None else {"image_size": request.image_size}
        model = self._engine.load_model(request.checkpoint, request.device, **size)
        self._model, self._session = model, None
        self._device = request.device
        self._variant = getattr(getattr(model, "cfg", None), "name", "") or "unknown"
        identity = self._state.model_loaded(request.checkpoint, model, self._variant)
        image_size = int(getattr(model, "image_size", 0) or 0)
        self.model_loaded.emit(
            ModelInfo(request.request_id, self._variant, self._device, image_size, identity)
        )
        if self._open_source is not None:
            self._start_session(request.request_id)

    def _load_finder(self, request: LoadFinder) -> None:
        # As for the tracker: a file that fails to load leaves the working finder in place.
        start = time.perf_counter()
        finder = self._engine.load_finder(request.checkpoint, request.device)
        self._finder, self._finder_file = finder, (request.checkpoint, request.device)
        parameters = sum(int(p.numel()) for p in finder.parameters())
        seconds = time.perf_counter() - start
        info = FinderInfo(
            request.request_id, request.checkpoint, request.device, parameters, seconds
        )
        self.finder_loaded.emit(info)

    def _find(self, request: Find) -> None:
        self._set_activity(Activity(request.request_id, find_action(request), request.frame))
        if self._source is None and self._open_source is not None:
            self._source = self._open_source()  # no tracker yet: the finder needs frames only
        self._hold_finder()
        self.find_ready.emit(run_find(self._finder, self._source, request, self._precision))

    def _hold_finder(self) -> None:
        # Fast holds the finder's large weights in bf16; exact after fast reloads them.
        if self._finder is not None:
            reload = functools.partial(self._engine.load_finder, *self._finder_file)
            self._finder = finder_in_precision(self._finder, self._precision, reload)

    def _open_video(self, request: OpenVideo) -> None:
        self._session = self._source = None
        self._state.waiting = None
        self._open_source = request.open_source
        if self._model is not None:
            self._start_session(request.request_id)

    def _start_session(self, request_id: int) -> None:
        assert self._open_source is not None
        self._source = source = self._open_source()
        self._session = self._engine.open_session(self._model, source, self._device)
        self._apply_precision()
        h, w = self._session.video_size
        self.session_opened.emit(SessionInfo(request_id, self._session.num_frames, (h, w)))
        waiting, self._state.waiting = self._state.waiting, None
        if waiting is not None:
            self._restore_state(waiting)

    def _require_session(self) -> Any:
        if self._session is None:
            what = "no model is loaded" if self._model is None else "no video is open"
            raise RuntimeError(f"cannot run the model: {what}")
        return self._session

    def _set_prompts(self, request: SetPrompts) -> None:
        session = self._require_session()
        if len(request.points) == 0 and request.box is None and request.mask_rle is None:
            if request.obj_id in session.object_ids:
                session.clear_prompts(request.frame, request.obj_id)
            cleared = MaskResult(request.request_id, request.frame, request.obj_id, None)
            self.mask_ready.emit(cleared)
            return
        encoding = not session.is_encoded(request.frame)
        action = "encoding" if encoding else "segmenting"
        self._set_activity(Activity(request.request_id, action, request.frame))
        if request.mask_rle is not None:
            mask = decode_rle(request.mask_rle, tuple(session.video_size))
            prompt = self._engine.make_prompt(None, None, None, mask=mask)
        else:
            points = request.points if len(request.points) else None
            labels = request.labels if len(request.points) else None
            prompt = self._engine.make_prompt(points, labels, request.box)
        result = session.add_prompt(request.frame, request.obj_id, prompt, clear_old=True)
        mask = np.array(result.mask, dtype=bool, copy=True)
        score, iou = float(result.score), float(result.iou)
        self.mask_ready.emit(
            MaskResult(request.request_id, request.frame, request.obj_id, mask, score, iou)
        )

    def _propagate(self, request: Propagate) -> None:
        session = self._require_session()
        self._cancel.clear()
        progress = PassProgress(session, request.request_id, request.start, request.direction)
        inbox = RequestInbox(
            self._pending, run=self._run, skip=self._skip, superseded=_is_superseded
        )
        live = LivePass(session, request.start, request.direction, inbox=inbox, cancel=self._cancel)
        if request.find is not None:
            self._hold_finder()
        finding = pass_finder(
            self._finder,
            request.find,
            self._source,
            start=request.start,
            precision_choice=self._precision,
            device=self._device,
            cancel=self._cancel,
        )
        for frame_result in live.frames():
            masks = {
                obj_id: (np.array(r.mask, dtype=bool, copy=True) if r.score > 0 else None)
                for obj_id, r in frame_result.objects.items()
            }
            quality = {o: (float(r.iou), float(r.score)) for o, r in frame_result.objects.items()}
            self.frame_ready.emit(
                FrameMasks(request.request_id, frame_result.frame, masks, quality)
            )
            step = progress.frame_done(frame_result.frame, list(frame_result.objects))
            self.propagation_progress.emit(step)
            found = finding and finding.look(request.request_id, frame_result, session.object_ids)
            if found:
                self.found_in_pass.emit(found)
        cancelled = self._cancel.is_set()
        self._cancel.clear()
        summary = PropagationSummary(request.request_id, progress.done, cancelled)
        self.propagation_finished.emit(summary)

    def _remove_object(self, request: RemoveObject) -> None:
        if self._session is not None and request.obj_id in self._session.object_ids:
            self._session.remove_object(request.obj_id)

    def _set_precision(self, request: SetPrecision) -> None:
        describe_precision(request.precision, self._device)  # refuses an unknown name
        self._precision = request.precision
        self._apply_precision()

    def _apply_precision(self) -> None:
        # Between requests, so no computation straddles the switch; the session keeps
        # its masks and memories and drops cached features of the other precision.
        set_precision = getattr(self._session, "set_precision", None)
        if set_precision is not None:
            set_precision(self._precision)

    def _set_focus(self, request: Focus) -> None:
        self._focus = request.frame
        self._prefetch_queue = []
        self._state.visited(request.frame)

    # ---- engine state store ----------------------------------------------------------------
    def _save_state(self, request: SaveState) -> None:
        if self._session is not None:
            report = self._state.save(self._session, request)
            if report is not None:
                self.state_report.emit(report)

    def _restore_state(self, request: RestoreState) -> None:
        if self._session is None:
            self._state.waiting = request  # restored as soon as the session opens
            return
        report = self._state.restore(self._session, request)
        if report is not None:
            self.state_report.emit(report)

    # ---- idle encoding ---------------------------------------------------------------------
    def _schedule_prefetch(self) -> None:
        if self._session is None:
            return
        if not self._prefetch_queue:
            n = self._session.num_frames
            ahead = range(self._focus, min(self._focus + PREFETCH_AHEAD + 1, n))
            behind = range(self._focus - 1, max(self._focus - PREFETCH_AHEAD // 2, 0) - 1, -1)
            self._prefetch_queue = [f for f in (*ahead, *behind) if 0 <= f < n]
        # A zero timer runs after already-queued requests, so new requests always go first.
        QTimer.singleShot(0, self, self._prefetch_step)

    @Slot()
    def _prefetch_step(self) -> None:
        with self._pending.lock:
            busy = self._pending.count > 0
        if busy or self._session is None:
            return
        while self._prefetch_queue:
            frame = self._prefetch_queue.pop(0)
            if not self._session.is_encoded(frame):
                # A click sent now waits for this frame: the badge says so then.
                self._set_activity(Activity(-1, "encoding ahead", frame))
                try:
                    self._session.encode_frame(frame)
                except Exception as exc:  # noqa: BLE001 - prefetch is best-effort
                    self.job_failed.emit(JobError(-1, "encoding ahead", str(exc)))
                    self._prefetch_queue = []
                    return
                finally:
                    self._set_activity(Activity(-1, ""))
                self._emit_stats()
                QTimer.singleShot(0, self, self._prefetch_step)
                return

    def _emit_stats(self) -> None:
        cache = int(getattr(self._session, "cache_bytes_used", 0) or 0)
        precision, note = describe_precision(self._precision, self._device)
        stats = EngineStats(self._device, self._variant, cache, precision, note, self._precision)
        self.stats_changed.emit(stats)


def _is_superseded(pending: PendingBook, request: Any) -> bool:
    key = supersede_key(request)
    return key is not None and pending.latest.get(key, request.request_id) > request.request_id


def supersede_key(request: Any) -> Any:
    if isinstance(request, SetPrompts):
        return ("prompts", request.frame, request.obj_id)
    if isinstance(request, Focus):
        return "focus"
    if isinstance(request, SaveState):
        return ("state", request.folder)
    if isinstance(request, Find):
        return "find"
    return None
