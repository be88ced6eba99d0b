"""Project files and autosave for the document, over the plain-Python `app.project.files` API.

Converts the document to and from `Project` + `MaskStore`, saves and opens project files,
and feeds every document change to the `Autosaver` (prompt and object changes are saved
at once, masks at most every few seconds from a GUI-thread timer).

Each save, explicit or automatic, is followed by a request to the worker to write the
engine's state into the project's optional sidecar `NAME.masklet-state/` (or the recovery
set's); opening a project or recovering one asks the worker to restore from it. Both run
on the worker thread; their one-line outcome comes back as `SessionController.state_status`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.gui.document.annotations import AnnotationDocument, FramePrompts, MaskletObject
from app.gui.worker.model_change import load_stale_settings, stale_settings
from app.gui.worker.session_controller import SessionController
from app.project.autosave import Autosaver, RecoveryInfo
from app.project.files import FramePrompt, ObjectInfo, Project, load_project, save_project
from app.project.mask_store import MaskStore

AUTOSAVE_TICK_MS = 500


def state_folder(project_path: str) -> str:
    """The engine state sidecar of a project, as `model.engine.state_store.state_folder`
    names it (spelled here so the GUI imports without torch)."""
    path = Path(project_path)
    return str(path.with_name(path.name + "-state"))


class ProjectController(QObject):
    """Saves and opens projects and drives the autosaver.

    Autosave failures are reported, never raised into Qt: `autosave_failed(message, first)`
    on every failed save (`first` is true only for the first since the last success, so
    the window shows one dialog per failure streak), `autosave_recovered` once a save
    succeeds again.
    """

    saved = Signal(str)
    # A project's settings were taken (its input size, its masks' model): sent before the
    # engine state restore is asked for, so a model reload at the project's size goes first.
    settings_applied = Signal()
    autosave_failed = Signal(str, bool)  # message, first failure since the last success
    autosave_recovered = Signal()

    def __init__(
        self,
        document: AnnotationDocument,
        session: SessionController,
        autosaver: Autosaver | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._session = session
        self._autosaver = autosaver
        self.path: str | None = None
        self.settings: dict = {}
        self._loading = False
        self._failing = False
        self._failures_seen = 0
        self._saves_seen = 0
        self._state_source: str | None = None  # the store of the project being opened
        self._timer = QTimer(self)
        self._timer.setInterval(AUTOSAVE_TICK_MS)
        self._timer.timeout.connect(self._on_autosave_tick)
        document.prompts_changed.connect(lambda _f, _o: self._mark("prompts"))
        signals = (document.objects_changed, document.object_changed, document.labels_changed)
        for signal in signals:
            signal.connect(lambda *_: self._mark("objects"))
        document.masks_changed.connect(lambda _f: self._mark("masks"))

    @property
    def autosaver(self) -> Autosaver | None:
        return self._autosaver

    # ---- conversion ------------------------------------------------------------------------
    def to_project(self) -> Project:
        doc = self._doc
        objects = [
            ObjectInfo(o.obj_id, o.name, o.category, tuple(o.color), o.visible, o.finder_score)
            for o in doc.objects()
        ]
        prompts = [
            FramePrompt(frame, obj_id, [tuple(p) for p in fp.points], fp.box, fp.mask)
            for (frame, obj_id), fp in sorted(doc.all_prompts().items())
        ]
        settings = {**self.settings, "current_frame": doc.current_frame, **stale_settings(doc)}
        return Project(
            video_path=doc.video_path or "",
            objects=objects,
            prompts=prompts,
            settings=settings,
            num_frames=doc.num_frames,
            video_size=doc.video_size,
            labels=doc.labels(),
        )

    def state(self) -> tuple[Project, MaskStore]:
        return self.to_project(), self._doc.store

    def apply(self, project: Project, store: MaskStore) -> None:
        """Fill the (freshly reset) document from a project; the engine syncs lazily."""
        doc = self._doc
        if tuple(project.video_size) != tuple(doc.video_size):
            raise ValueError(
                f"the project is for a {project.video_size} video, this one is {doc.video_size}"
            )
        self._loading = True
        self._session.set_muted(True)
        try:
            doc.set_labels(tuple(project.labels))
            for info in project.objects:
                color = tuple(int(c) for c in info.color)
                doc.insert_object(
                    MaskletObject(
                        info.obj_id,
                        info.name,
                        info.category,
                        color,
                        info.visible,
                        info.finder_score,
                    )
                )
            for p in project.prompts:
                if doc.has_object(p.obj_id) and p.frame < doc.num_frames:
                    points = tuple((float(x), float(y), int(lab)) for x, y, lab in p.points)
                    box = None if p.box is None else tuple(float(v) for v in p.box)
                    doc.set_prompts(p.frame, p.obj_id, FramePrompts(points, box, p.mask_rle))
            doc.adopt_store(store)
            self.settings = dict(project.settings)
            load_stale_settings(doc, self.settings)
            if doc.objects():
                doc.set_active_object(doc.objects()[0].obj_id)
            doc.set_current_frame(int(self.settings.get("current_frame", 0) or 0))
        finally:
            self._session.set_muted(False)
            self._loading = False
        self._session.mark_all_unsynced()
        self.settings_applied.emit()
        recovered = None if self._autosaver is None else self._autosaver.take_recovered_state()
        source = str(recovered) if recovered is not None else self._state_source
        self._state_source = None
        if source is not None:
            self._session.restore_engine_state(source)
        self.flush()

    # ---- files -----------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the project; raises ValueError or OSError with a message for the user."""
        project, store = self.state()
        save_project(path, project, store, only_dirty=path == self.path)
        self._session.save_engine_state(state_folder(path), explicit=True)
        self.path = path
        if self._autosaver is not None:
            self._autosaver.set_project_path(path)
        self.saved.emit(path)

    def read(self, path: str) -> tuple[Project, MaskStore]:
        """Load a project file; raises `ProjectError` for anything unreadable.

        `apply` then restores the engine state saved beside it."""
        loaded = load_project(path)
        self._state_source = state_folder(path)
        return loaded

    # ---- autosave --------------------------------------------------------------------------
    def start_autosave(self) -> None:
        if self._autosaver is None:
            return
        self._autosaver.attach(self.state, project_path=self.path)
        self._timer.start()

    def stop_autosave(self) -> None:
        """No autosave for a project opened read-only; Save As starts it again."""
        self._timer.stop()

    def _mark(self, kind: str) -> None:
        if self._autosaver is None or self._loading or not self._timer.isActive():
            return
        self._autosaver.mark_dirty(kind)
        self._report()

    def flush(self) -> None:
        """Autosave everything now (e.g. right after recovering, before the old set goes)."""
        if self._autosaver is not None and self._timer.isActive():
            self._autosaver.flush()
            self._report()

    def _on_autosave_tick(self) -> None:
        if self._autosaver is not None:
            self._autosaver.tick()
            self._report()

    @property
    def autosave_failing(self) -> bool:
        """Whether the latest autosave failed (the recovery set lags behind the document)."""
        return self._failing

    def _report(self) -> None:
        saver = self._autosaver
        if saver is None:
            return
        if saver.saves != self._saves_seen and saver.state_dir is not None:
            self._saves_seen = saver.saves
            self._session.save_engine_state(str(saver.state_dir))
        if saver.last_error is not None and saver.failed_saves != self._failures_seen:
            self._failures_seen = saver.failed_saves
            first, self._failing = not self._failing, True
            self.autosave_failed.emit(saver.last_error, first)
        elif saver.last_error is None and self._failing:
            self._failing = False
            self.autosave_recovered.emit()

    def find_recoverable(self) -> list[RecoveryInfo]:
        return [] if self._autosaver is None else self._autosaver.find_recoverable()

    def shutdown(self) -> None:
        """The user's work is saved or deliberately discarded: drop recovery data."""
        self._timer.stop()
        if self._autosaver is not None:
            self._autosaver.clean_shutdown()
