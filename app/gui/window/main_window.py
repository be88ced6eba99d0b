"""The main window: builds the widgets and controllers and wires them together.

It owns no annotation logic. The document holds state, the canvas/session/project
controllers translate between it and the canvas, the worker and the disk, the frame
navigator (`app.gui.timeline.navigation`) moves through the video, and the window connects
actions to them and reports what happens. Like napari's `Window`, it composes its parts
as objects it creates and hands each what it needs: `build_layout` places the widgets,
`FileCommands` (app/gui/files/file_menu.py) runs the File and Model menus; none imports the
window back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QWidget

from app.gui.actions import AppActions
from app.gui.canvas.brush import Tool
from app.gui.canvas.busy_badge import BusyBadge
from app.gui.canvas.controller import CanvasController
from app.gui.canvas.frame_canvas import FrameCanvas, ToolActions
from app.gui.dialogs.recovery_dialog import ask_recovery
from app.gui.document.annotations import AnnotationDocument
from app.gui.document.commands import DeleteObjectCommand, NewObjectCommand, clear_frame
from app.gui.files.error_text import describe_job_failure
from app.gui.files.file_menu import FileCommands
from app.gui.files.import_io import ask_import_path
from app.gui.files.project_io import ProjectController
from app.gui.files.project_locks import ProjectLocks
from app.gui.find.controller import install_find
from app.gui.settings import AppSettings
from app.gui.timeline.confidence import DoubtfulNavigator
from app.gui.timeline.follow import FollowController
from app.gui.timeline.navigation import FrameNavigator
from app.gui.timeline.widgets import Playback, ScrubBar, TimelineTracks
from app.gui.window.find_while_propagating import attach_finding
from app.gui.window.labels_ui import LabelControls
from app.gui.window.layout import WindowParts, build_layout
from app.gui.window.masklet_list import MaskletPanel
from app.gui.window.model_menu import extend_model_menu
from app.gui.window.precision_menu import PrecisionMenu
from app.gui.window.status_bar import EngineStatus, PropagationProgress
from app.gui.worker.client import WorkerClient
from app.gui.worker.engine import Engine
from app.gui.worker.jobs import JobError, ModelInfo, PropagationSummary
from app.gui.worker.session_controller import SessionController
from app.project.autosave import Autosaver, RecoveryInfo

VideoOpener = Callable[[str], Any]
# How long a closing window lets the worker end; a model call still running after that is
# not waited for (the process ends without it: everything the user did is on disk by then).
QUIT_WAIT_MS = 250


def _default_video_opener(path: str) -> Any:
    from app.video import open_video

    return open_video(path)


class MainWindow(QMainWindow):
    """Masklet's main window. `engine` and `video_opener` are injectable for tests."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: AppSettings,
        autosaver: Autosaver | None = None,
        video_opener: VideoOpener = _default_video_opener,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Masklet")
        self.setAcceptDrops(True)
        self.settings = settings
        self.video_opener = video_opener
        self.document = AnnotationDocument(self)
        self.undo_stack = QUndoStack(self)
        self.actions = AppActions(self)
        self.client = WorkerClient(engine, self)
        self.canvas = FrameCanvas()
        self.busy_badge = BusyBadge(self.client, self.canvas)
        self.panel = MaskletPanel(self.document, self.undo_stack)
        self.scrub = ScrubBar(self.document)
        self.tracks = TimelineTracks(self.document)
        self.playback = Playback(self.document, self)
        self.engine_status = EngineStatus()
        self.progress = PropagationProgress()
        self.canvas_ctl = CanvasController(
            self.document, self.canvas, self.undo_stack, opacity=settings.opacity, parent=self
        )
        self.session = SessionController(self.document, self.client, self)
        self.session.state_budget_bytes = settings.state_budget_bytes
        self.session.state_status.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.project = ProjectController(self.document, self.session, autosaver, self)
        self.locks = ProjectLocks(self)
        self.follow = FollowController(
            self.document,
            self.client,
            self.session,
            self.actions.follow,
            self.progress.follow,
            self,
        )
        self.last_error: str | None = None
        # Propagated masks are not undo steps, so the undo stack alone cannot tell "saved".
        self._masks_dirty = False
        self._model_info: ModelInfo | None = None
        # Model choices waiting for their load to succeed, by request id.
        self._model_choices: dict[int, tuple[str, str]] = {}
        self.error_box: QMessageBox | None = None
        parts = WindowParts(
            self.canvas, self.scrub, self.tracks, self.panel, self.progress, self.engine_status
        )
        layout = build_layout(self, self.actions, parts, opacity=self.canvas_ctl.opacity)
        self.recent_menu, self.device_menu = layout.recent_menu, layout.device_menu
        self.precision_submenu = layout.precision_submenu
        self.opacity_slider = layout.opacity_slider
        self.files = FileCommands(
            self, parent=self, recent_menu=self.recent_menu, device_menu=self.device_menu
        )
        # Dialog hooks; tests replace them to answer programmatically.
        self.ask_recovery: Callable[[RecoveryInfo], str] = lambda info: ask_recovery(self, info)
        # confirm_discard: True when the work may be replaced (saved, or discarded on purpose).
        self.confirm_discard: Callable[[], bool] = self.files.confirm_discard_dialog
        self.ask_import_path: Callable[[], str | None] = lambda: ask_import_path(self)
        self.labels = LabelControls(self, self.document, self.undo_stack, self.statusBar())
        self.precision_menu = PrecisionMenu(
            self.precision_submenu,
            settings=settings,
            client=self.client,
            status_bar=self.statusBar(),
        )
        self._connect()
        self.find_controller = install_find(self)  # Ctrl+F, proposals, the find-similar tool
        # After `_connect`: a model change's note on marked masks follows "Model ... ready".
        self.stale_marks, self.input_size = extend_model_menu(
            self, layout.model_menu, layout.input_size_submenu
        )
        # Also after it: the finder's notes follow the window's own reports.
        self.finder, self.pass_finds = attach_finding(self)
        self._update_title()
        self._restore_window()

    # ---- wiring ----------------------------------------------------------------------------
    def _connect(self) -> None:
        a = self.actions
        self.files.connect(a)
        a.undo.triggered.connect(self.undo_stack.undo)
        a.redo.triggered.connect(self.undo_stack.redo)
        self.undo_stack.canUndoChanged.connect(a.undo.setEnabled)
        self.undo_stack.canRedoChanged.connect(a.redo.setEnabled)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.document.masks_changed.connect(self._on_masks_changed)
        a.undo.setEnabled(False)
        a.redo.setEnabled(False)
        a.new_object.triggered.connect(self.new_object)
        a.delete_object.triggered.connect(self._on_delete_active)
        a.clear_frame.triggered.connect(self._on_clear_frame)
        self.panel.new_object_requested.connect(self.new_object)
        self.panel.delete_object_requested.connect(self.delete_object)
        self._connect_navigation()
        self._connect_view()
        self._connect_worker()

    def _connect_navigation(self) -> None:
        doc = self.document
        self.doubtful = DoubtfulNavigator(doc, self.settings, self.statusBar(), self)
        self.doubtful.threshold_changed.connect(self.tracks.set_threshold)
        self.tracks.set_threshold(self.doubtful.threshold)
        self.navigator = FrameNavigator(doc, self.playback, self.actions, self.doubtful, self)
        self.tracks.frame_clicked.connect(doc.set_current_frame)
        self.scrub.frame_entered.connect(self.canvas.setFocus)

    def _connect_view(self) -> None:
        a = self.actions
        a.toggle_overlays.setChecked(True)
        a.toggle_overlays.toggled.connect(self.canvas.set_overlay_visible)
        a.zoom_fit.triggered.connect(self.canvas.fit_to_window)
        a.zoom_in.triggered.connect(lambda: self.canvas.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: self.canvas.zoom_by(0.8))
        a.opacity_up.triggered.connect(lambda: self.set_opacity(self.canvas_ctl.opacity + 0.1))
        a.opacity_down.triggered.connect(lambda: self.set_opacity(self.canvas_ctl.opacity - 0.1))
        self.opacity_slider.valueChanged.connect(lambda v: self.set_opacity(v / 100))
        tools = {Tool.POINT: a.point_tool, Tool.BRUSH: a.brush_tool, Tool.ERASER: a.eraser_tool}
        self.tool_actions = ToolActions(self.canvas, tools)
        self.canvas_ctl.status_message.connect(lambda t: self.statusBar().showMessage(t, 4000))
        a.about.triggered.connect(self._on_about)

    def _connect_worker(self) -> None:
        a, client = self.actions, self.client
        a.propagate_forward.triggered.connect(lambda: self.propagate("forward"))
        a.propagate_backward.triggered.connect(lambda: self.propagate("backward"))
        a.propagate_both.triggered.connect(lambda: self.propagate("both"))
        a.cancel.triggered.connect(self.progress.show_cancelling)
        a.cancel.triggered.connect(client.cancel)
        self.progress.cancel_requested.connect(client.cancel)
        client.model_loaded.connect(self._on_model_loaded)
        client.propagation_progress.connect(self.progress.set_progress)
        client.propagation_finished.connect(self._on_propagation_finished)
        client.job_failed.connect(self._on_job_failed)
        client.stats_changed.connect(self.engine_status.set_stats)
        self.project.autosave_failed.connect(self._on_autosave_failed)
        self.project.autosave_recovered.connect(self._on_autosave_recovered)

    # ---- file commands: the window's entry points (app.gui.main, drops, tests) -------------
    def open_path(self, path: str) -> bool:
        return self.files.open_path(path)

    def open_video(self, path: str, *, asked: bool = False) -> bool:
        return self.files.open_video(path, asked=asked)

    def open_project(self, path: str, *, asked: bool = False) -> bool:
        return self.files.open_project(path, asked=asked)

    def save_project(self, path: str | None = None, *, ask: bool = False) -> bool:
        return self.files.save_project(path, ask=ask)

    def import_annotations(self, path: str) -> bool:
        return self.files.import_annotations(path)

    def offer_recovery(self) -> bool:
        return self.files.offer_recovery()

    def choose_model(self) -> None:
        self.files.choose_model()

    @property
    def export_dialog(self) -> Any:
        return self.files.export_dialog

    # ---- editing ---------------------------------------------------------------------------
    def new_object(self) -> int | None:
        if self.document.num_frames == 0:
            return None
        obj = self.document.default_object(self.document.next_object_id())
        self.undo_stack.push(NewObjectCommand(self.document, obj))
        return obj.obj_id

    def delete_object(self, obj_id: int) -> None:
        if self.document.has_object(obj_id):
            self.undo_stack.push(DeleteObjectCommand(self.document, obj_id))

    def _on_delete_active(self) -> None:
        if self.document.active_object is not None:
            self.delete_object(self.document.active_object)

    def _on_clear_frame(self) -> None:
        command = clear_frame(self.document, self.document.current_frame)
        if command is not None:
            self.undo_stack.push(command)

    def set_opacity(self, value: float) -> None:
        value = min(max(value, 0.0), 1.0)
        self.canvas_ctl.set_opacity(value)
        self.settings.opacity = value
        self.opacity_slider.blockSignals(True)
        self.opacity_slider.setValue(round(value * 100))
        self.opacity_slider.blockSignals(False)

    # ---- worker ----------------------------------------------------------------------------
    def load_model(self, checkpoint: str, device: str, *, remember: bool = False) -> None:
        """Load in the worker; with `remember`, the settings take the choice once it loads,
        so a rejected checkpoint or device never becomes the next start's model."""
        self.engine_status.set_model("loading…", device)
        request_id = self.client.load_model(checkpoint, device, self.input_size.load_size())
        if remember:
            self._model_choices[request_id] = (checkpoint, device)

    def model_description(self) -> str | None:
        """ "sam2.1-tiny on cpu" for the loaded model; None while none is."""
        info = self._model_info
        return f"{info.variant} on {info.device}" if info else None

    def propagate(self, direction: str) -> None:
        if self.document.num_frames == 0 or not self.document.all_prompts():
            self.statusBar().showMessage("Add a prompt before propagating", 4000)
            return
        self.playback.stop()
        self.session.propagate(direction, self.pass_finds.spec())
        self.progress.start(direction)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self._model_info = info
        choice = self._model_choices.pop(info.request_id, None)
        if choice is not None:
            self.settings.checkpoint, self.settings.device = choice
        self.files.check_device(info.device)
        self.engine_status.set_model(info.variant, info.device)
        self.statusBar().showMessage(f"Model {info.variant} ready on {info.device}", 4000)

    def _on_propagation_finished(self, summary: PropagationSummary) -> None:
        self.progress.finish()
        verb = "cancelled after" if summary.cancelled else "finished:"
        self.statusBar().showMessage(f"Propagation {verb} {summary.frames} frames", 5000)

    def _on_job_failed(self, error: JobError) -> None:
        if error.action == "loading the model":
            # The worker keeps the model it had; show that one again, and forget the choice.
            self._model_choices.pop(error.request_id, None)
            info = self._model_info
            self.files.check_device(info.device if info else self.settings.device)
            self.engine_status.set_model(
                *(info.variant, info.device) if info else ("no model", "-")
            )
        self.report_error(*describe_job_failure(error.action, error.message))

    # ---- reporting -------------------------------------------------------------------------
    def report_error(self, title: str, message: str) -> None:
        """Status bar plus a non-blocking message box; the app stays usable."""
        self.last_error = f"{title}: {message}"
        self.statusBar().showMessage(self.last_error, 10000)
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        self.error_box.setWindowModality(Qt.WindowModality.WindowModal)
        self.error_box.open()

    def _on_autosave_failed(self, message: str, first: bool) -> None:
        """Status bar on every failure; one dialog per streak, not one per failed save."""
        if first:
            self.report_error(
                "Autosave failed",
                f"{message}. Changes from now on are not protected against a crash until "
                "autosave works again; save the project to keep them.",
            )
        self.statusBar().showMessage(f"{message} (changes are not crash-protected)")

    def _on_autosave_recovered(self) -> None:
        self.statusBar().showMessage("Autosave works again", 5000)

    def _on_clean_changed(self, _clean: bool) -> None:
        self._update_title()

    def _on_masks_changed(self, _frame: int) -> None:
        if not self._masks_dirty:
            self.mark_unsaved()

    def has_unsaved_changes(self) -> bool:
        if self.document.num_frames == 0:
            return False
        return self._masks_dirty or not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()
        self._masks_dirty = False
        self._update_title()

    def mark_unsaved(self) -> None:
        self._masks_dirty = True
        self._update_title()

    def _update_title(self) -> None:
        name = Path(self.project.path or self.document.video_path or "").name
        dirty = " *" if self.has_unsaved_changes() else ""
        dirty += " [read-only]" if self.locks.read_only else ""
        self.setWindowTitle(f"{name}{dirty} — Masklet" if name else "Masklet")

    # ---- window ----------------------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_path(urls[0]))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.has_unsaved_changes() and not self.confirm_discard():
            event.ignore()
            return
        self.playback.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        # The worker would finish the frame it is encoding before its thread ends (seconds
        # with a large model on a CPU): the window goes at once, the worker gets a moment,
        # and `app.gui.main.end_process` ends the process if the model call is still busy.
        self.hide()
        QApplication.processEvents()
        self.project.shutdown()
        self.locks.release()
        self.client.shutdown(wait_ms=QUIT_WAIT_MS)
        event.accept()

    def _on_about(self) -> None:
        QMessageBox.about(
            self, "About Masklet", "Masklet — interactive video object segmentation on SAM 2."
        )
