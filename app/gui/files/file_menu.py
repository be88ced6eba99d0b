"""File and model commands of the main window: open, save, import, recent, recovery, model.

`FileCommands` is an object the window creates, napari-style: it is handed the window as a
`FileHost` (the parts those commands read and drive, listed below) and the menus it fills,
so this module never imports the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from app.gui.actions import AppActions
from app.gui.dialogs.model_dialog import ModelChoice, ModelDialog
from app.gui.files import import_io
from app.gui.files.error_text import video_failure
from app.models import devices
from app.project.autosave import RecoveryInfo
from app.project.files import ProjectError

if TYPE_CHECKING:
    from app.gui.canvas.controller import CanvasController
    from app.gui.canvas.frame_canvas import FrameCanvas
    from app.gui.files.finder_loading import FinderLoading
    from app.gui.files.project_io import ProjectController
    from app.gui.files.project_locks import ProjectLocks
    from app.gui.settings import AppSettings
    from app.gui.timeline.widgets import Playback
    from app.gui.worker.client import WorkerClient

PROJECT_SUFFIX = ".masklet"
VIDEO_FILTER = "Videos (*.mp4 *.mov *.avi *.mkv *.webm *.m4v);;All files (*)"
PROJECT_FILTER = "Masklet projects (*.masklet)"


class FileHost(import_io.ImportHost, Protocol):
    """What the file commands read and drive of the window (`MainWindow` satisfies it)."""

    confirm_discard: Callable[[], bool]
    ask_recovery: Callable[[RecoveryInfo], str]
    ask_import_path: Callable[[], str | None]

    @property
    def settings(self) -> AppSettings: ...

    @property
    def project(self) -> ProjectController: ...

    @property
    def playback(self) -> Playback: ...

    @property
    def canvas(self) -> FrameCanvas: ...

    @property
    def canvas_ctl(self) -> CanvasController: ...

    @property
    def client(self) -> WorkerClient: ...

    @property
    def locks(self) -> ProjectLocks: ...

    @property
    def finder(self) -> FinderLoading: ...

    @property
    def actions(self) -> AppActions: ...

    @property
    def video_opener(self) -> Callable[[str], Any]: ...

    def has_unsaved_changes(self) -> bool: ...

    def mark_saved(self) -> None: ...

    def mark_unsaved(self) -> None: ...

    def load_model(self, checkpoint: str, device: str, *, remember: bool = False) -> None: ...

    def model_description(self) -> str | None: ...


class FileCommands:
    """Open/save/import/recover/export/model commands, and the menus they fill."""

    def __init__(
        self,
        host: FileHost,
        *,
        parent: QWidget,
        recent_menu: QMenu,
        device_menu: QMenu,
    ) -> None:
        self.host = host
        self._parent = parent  # dialogs' parent: the window
        self.recent_menu = recent_menu
        self.device_menu = device_menu
        self.reader: Any = None  # the open video's reader
        self.export_dialog: Any = None

    # ---- wiring ----------------------------------------------------------------------------
    def connect(self, a: AppActions) -> None:
        a.open_video.triggered.connect(self._on_open_video)
        a.open_project.triggered.connect(self._on_open_project)
        a.save.triggered.connect(lambda: self.save_project())
        a.save_as.triggered.connect(lambda: self.save_project(ask=True))
        a.export.triggered.connect(self.show_export)
        a.import_annotations.triggered.connect(self._on_import_annotations)
        a.quit.triggered.connect(self._parent.close)
        a.choose_model.triggered.connect(self.choose_model)
        a.help.triggered.connect(self.show_help)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_device_menu()

    def _fill_device_menu(self) -> None:
        """cuda and mps are listed even when absent, disabled, with the reason as tooltip."""
        self.device_menu.setToolTipsVisible(True)
        for device, problem in devices.device_problems().items():
            action = QAction(device, self._parent)
            action.setCheckable(True)
            action.setEnabled(problem is None)
            action.setToolTip(problem or f"Run the model on {device}")
            action.triggered.connect(lambda _=False, d=device: self.switch_device(d))
            self.device_menu.addAction(action)
        self.check_device(self.host.settings.device)

    def check_device(self, device: str) -> None:
        for action in self.device_menu.actions():
            action.setChecked(action.text() == device)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.host.settings.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        if self.host.settings.recent_files():
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.host.settings.clear_recent_files)

    def _on_open_video(self) -> None:
        # Unsaved work is settled before the file dialog, not after a file was picked.
        if not self._may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(self._parent, "Open video", "", VIDEO_FILTER)
        if path:
            self.open_video(path, asked=True)

    def _on_open_project(self) -> None:
        if not self._may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(self._parent, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path, asked=True)

    def _on_import_annotations(self) -> None:
        if import_io.require_video(self.host):
            path = self.host.ask_import_path()
            if path:
                self.import_annotations(path)

    def import_annotations(self, path: str) -> bool:
        """Add a DAVIS PNG folder's or a COCO / YouTube-VIS file's objects as one undo step."""
        return import_io.import_into_window(self.host, path)

    # ---- opening ---------------------------------------------------------------------------
    def open_path(self, path: str) -> bool:
        """Open a project (`.masklet`) or else a video file or image folder."""
        if path.endswith(PROJECT_SUFFIX):
            return self.open_project(path)
        return self.open_video(path)

    def _may_replace_document(self) -> bool:
        return not self.host.has_unsaved_changes() or self.host.confirm_discard()

    def open_video(self, path: str, *, asked: bool = False) -> bool:
        """Open a video for a fresh document; on failure the current one stays.
        `asked`: the user already settled unsaved changes (saved or discarded them)."""
        if not (asked or self._may_replace_document()) or not self._load_video(path):
            return False
        self.host.project.path = None
        self.host.locks.release()
        self._apply_lock_mode()
        self.host.settings.add_recent_file(path)
        self.host.mark_saved()
        return True

    def _load_video(self, path: str) -> bool:
        try:
            reader = self.host.video_opener(path)
            num_frames = len(reader)
            if num_frames == 0:
                raise ValueError("the video has no frames")
            height, width = reader[0].shape[:2]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            self.host.report_error("Cannot open video", video_failure(path, str(exc)))
            return False
        self.host.playback.stop()
        old, self.reader = self.reader, reader
        if hasattr(old, "close"):
            old.close()
        fps = float(getattr(reader, "fps", 0) or 25.0)
        self.host.undo_stack.clear()
        self.host.document.reset(
            video_path=str(path), num_frames=num_frames, video_size=(height, width), fps=fps
        )
        self.host.canvas_ctl.set_reader(lambda i: self.reader[i])
        self.host.canvas.fit_to_window()
        opener = self.host.video_opener
        self.host.client.open_video(lambda: opener(path))
        self._report_truncation(reader, path)
        return True

    def _report_truncation(self, reader: Any, path: str) -> None:
        """Once per opening, in the status bar: a file cut short opens with fewer frames."""
        if not getattr(reader, "truncated", False):
            return
        name, shown = Path(path).name, len(reader)
        declared = getattr(reader, "declared_frames", None)
        if declared and declared > shown:
            text = f"{name} ends early: opened {shown} of the {declared} frames it lists"
        else:
            text = f"{name} ends early (cut short or damaged): opened its first {shown} frames"
        self.host.statusBar().showMessage(text, 20000)

    def open_project(self, path: str, *, asked: bool = False) -> bool:
        """Open a project file: its video, objects, prompts and stored masks."""
        if not (asked or self._may_replace_document()):
            return False
        claim = self.host.locks.for_open(path)  # one writer per project (`project_locks`)
        if claim is None:
            return False
        try:
            project, store = self.host.project.read(path)
        except (ProjectError, OSError) as exc:
            claim.abandon()
            self.host.report_error("Cannot open project", str(exc))
            return False
        if not self._apply_project(project, store):
            claim.abandon()
            return False
        self.host.locks.adopt(claim)
        self.host.project.path = path
        self._apply_lock_mode()
        self.host.settings.add_recent_file(path)
        self.host.mark_saved()
        return True

    def _apply_project(self, project: Any, store: Any) -> bool:
        if not self._load_video(project.video_path):
            return False
        try:
            self.host.project.apply(project, store)
        except ValueError as exc:
            self.host.report_error("Cannot open project", str(exc))
            return False
        self.host.undo_stack.clear()
        return True

    # ---- saving ----------------------------------------------------------------------------
    def save_project(self, path: str | None = None, *, ask: bool = False) -> bool:
        if self.host.document.num_frames == 0:
            return False
        target = path or (None if ask else self.host.project.path)
        if target is None:
            suggested = str(
                Path(self.host.document.video_path or "untitled").with_suffix(PROJECT_SUFFIX)
            )
            target, _ = QFileDialog.getSaveFileName(
                self._parent, "Save project", suggested, PROJECT_FILTER
            )
            if not target:
                return False
        if not target.endswith(PROJECT_SUFFIX):
            target += PROJECT_SUFFIX
        claim = self.host.locks.for_save(target)
        if isinstance(claim, str):
            self.host.report_error("Cannot save project", claim)
            return False
        try:
            self.host.project.save(target)
        except (OSError, ValueError) as exc:
            claim.abandon()
            self.host.report_error("Cannot save project", str(exc))
            return False
        was_read_only = self.host.locks.read_only
        self.host.locks.adopt(claim)
        if was_read_only:
            self._apply_lock_mode()
        self.host.mark_saved()
        self.host.settings.add_recent_file(target)
        self.host.statusBar().showMessage(f"Saved {target}", 4000)
        return True

    def _apply_lock_mode(self) -> None:
        """Read-only (another Masklet writes the project): no Save, no autosave. The
        callers' `mark_saved` then updates the title, which says read-only."""
        read_only = self.host.locks.read_only
        self.host.actions.save.setEnabled(not read_only)
        if read_only:
            self.host.project.stop_autosave()
            self.host.statusBar().showMessage("Opened read-only: Save As to keep changes", 10000)
        else:
            self.host.project.start_autosave()

    # ---- recovery --------------------------------------------------------------------------
    def offer_recovery(self) -> bool:
        """If a crashed session left work behind, ask whether to recover it."""
        autosaver = self.host.project.autosaver
        for info in self.host.project.find_recoverable():
            answer = self.host.ask_recovery(info)
            if answer == "discard":
                autosaver.discard(info)
                continue
            if answer != "recover":
                return False
            try:
                project, store = autosaver.recover(info)
            except (ProjectError, OSError) as exc:
                self.host.report_error("Cannot recover", str(exc))
                continue
            if self._apply_project(project, store):
                self.host.project.path = info.project_path
                self.host.project.start_autosave()
                self.host.project.flush()
                autosaver.discard(info)
                # Recovered work is not on disk under the user's name yet.
                self.host.undo_stack.resetClean()
                self.host.mark_unsaved()
                return True
        return False

    def confirm_discard_dialog(self) -> bool:
        """Save / Discard / Cancel, Save the default (Enter keeps the work); True to go on."""
        name = Path(self.host.project.path or self.host.document.video_path or "untitled").name
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Unsaved changes",
            f"Save your changes to {name}?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self._parent,
        )
        box.setInformativeText("Prompts and masks since the last save are lost if you discard.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return bool(self.save_project())
        return answer == QMessageBox.StandardButton.Discard

    # ---- model -----------------------------------------------------------------------------
    def choose_model(self) -> None:
        """Pick a tracker or finder checkpoint (and device); settings keep it once loaded."""
        finder = self.host.finder
        choice = _run_model_dialog(
            self._parent, self.host.settings, self.host.model_description(), finder.description()
        )
        if choice is None:
            return
        checkpoint, device, slot = ModelChoice(*choice)
        if slot == "finder":
            finder.load(checkpoint, device, remember=True)
        else:
            self.host.load_model(checkpoint, device, remember=True)

    def switch_device(self, device: str) -> None:
        """Reload the model on `device`; until that works the menu and settings keep the old."""
        self.check_device(self.host.settings.device)
        if self.host.settings.checkpoint:
            self.host.load_model(self.host.settings.checkpoint, device, remember=True)
        else:
            self.host.settings.device = device
            self.check_device(device)

    def show_help(self) -> None:
        from app.gui.dialogs.help_dialog import HelpDialog

        HelpDialog(self._parent).open()

    def show_export(self) -> None:
        if self.host.document.num_frames == 0:
            self.host.statusBar().showMessage("Open a video before exporting", 4000)
            return
        from app.gui.dialogs.export_dialog import ExportDialog
        from app.project.files import mask_folder

        opener, path = self.host.video_opener, self.host.document.video_path
        project = self.host.project.path
        inputs = [project, str(mask_folder(project))] if project else []
        self.export_dialog = ExportDialog(
            self.host.document, lambda: opener(path), parent=self._parent, inputs=inputs
        )
        self.export_dialog.open()


def _run_model_dialog(
    parent: Any, settings: Any, current: str | None, finder: str | None = None
) -> ModelChoice | None:
    """Ask for a tracker or finder checkpoint and a device; None when the user cancels."""
    dialog = ModelDialog(parent, device=settings.device, current=current, finder_current=finder)
    return dialog.choice() if dialog.exec() else None
