"""File and model commands of the main window: open, save, import, recent, recovery, model.

A mixin of `MainWindow` so those commands live in their own module; it uses only the
window's public parts (document, controllers, settings, `report_error`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app import devices
from app.autosave import RecoveryInfo
from app.gui import import_io
from app.gui.error_text import video_failure
from app.gui.model_dialog import ModelDialog
from app.project import ProjectError

PROJECT_SUFFIX = ".masklet"
VIDEO_FILTER = "Videos (*.mp4 *.mov *.avi *.mkv *.webm *.m4v);;All files (*)"
PROJECT_FILTER = "Masklet projects (*.masklet)"


class FileMenuMixin:
    """Open/save/recover/model commands; mixed into `MainWindow`."""

    # ---- wiring ----------------------------------------------------------------------------
    def _connect_file_actions(self: Any) -> None:
        a = self.actions
        a.open_video.triggered.connect(self._on_open_video)
        a.open_project.triggered.connect(self._on_open_project)
        a.save.triggered.connect(lambda: self.save_project())
        a.save_as.triggered.connect(lambda: self.save_project(ask=True))
        a.export.triggered.connect(self.show_export)
        a.import_annotations.triggered.connect(self._on_import_annotations)
        a.quit.triggered.connect(self.close)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_device_menu()

    def _fill_device_menu(self: Any) -> None:
        """cuda and mps are listed even when absent, disabled, with the reason as tooltip."""
        self.device_menu.setToolTipsVisible(True)
        for device, problem in devices.device_problems().items():
            action = QAction(device, self)
            action.setCheckable(True)
            action.setEnabled(problem is None)
            action.setToolTip(problem or f"Run the model on {device}")
            action.triggered.connect(lambda _=False, d=device: self.switch_device(d))
            self.device_menu.addAction(action)
        self.check_device(self.settings.device)

    def check_device(self: Any, device: str) -> None:
        for action in self.device_menu.actions():
            action.setChecked(action.text() == device)

    def _fill_recent_menu(self: Any) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        if self.settings.recent_files():
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.settings.clear_recent_files)

    def _on_open_video(self: Any) -> None:
        # Unsaved work is settled before the file dialog, not after a file was picked.
        if not self._may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", VIDEO_FILTER)
        if path:
            self.open_video(path, asked=True)

    def _on_open_project(self: Any) -> None:
        if not self._may_replace_document():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path, asked=True)

    def _on_import_annotations(self: Any) -> None:
        if import_io.require_video(self):
            path = self.ask_import_path()
            if path:
                self.import_annotations(path)

    def import_annotations(self: Any, path: str) -> bool:
        """Add a DAVIS PNG folder's or a COCO / YouTube-VIS file's objects as one undo step."""
        return import_io.import_into_window(self, path)

    # ---- opening ---------------------------------------------------------------------------
    def open_path(self: Any, path: str) -> bool:
        """Open a project (`.masklet`) or else a video file or image folder."""
        if path.endswith(PROJECT_SUFFIX):
            return self.open_project(path)
        return self.open_video(path)

    def _may_replace_document(self: Any) -> bool:
        return not self.has_unsaved_changes() or self.confirm_discard()

    def open_video(self: Any, path: str, *, asked: bool = False) -> bool:
        """Open a video for a fresh document; on failure the current one stays.
        `asked`: the user already settled unsaved changes (saved or discarded them)."""
        if not (asked or self._may_replace_document()) or not self._load_video(path):
            return False
        self.project.path = None
        self.project.start_autosave()
        self.settings.add_recent_file(path)
        self.mark_saved()
        return True

    def _load_video(self: Any, path: str) -> bool:
        try:
            reader = self.video_opener(path)
            num_frames = len(reader)
            if num_frames == 0:
                raise ValueError("the video has no frames")
            height, width = reader[0].shape[:2]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            self.report_error("Cannot open video", video_failure(path, str(exc)))
            return False
        self.playback.stop()
        old, self.reader = self.reader, reader
        if hasattr(old, "close"):
            old.close()
        fps = float(getattr(reader, "fps", 0) or 25.0)
        self.undo_stack.clear()
        self.document.reset(
            video_path=str(path), num_frames=num_frames, video_size=(height, width), fps=fps
        )
        self.canvas_ctl.set_reader(lambda i: self.reader[i])
        self.canvas.fit_to_window()
        opener = self.video_opener
        self.client.open_video(lambda: opener(path))
        self._report_truncation(reader, path)
        return True

    def _report_truncation(self: Any, reader: Any, path: str) -> None:
        """Once per opening, in the status bar: a file cut short opens with fewer frames."""
        if not getattr(reader, "truncated", False):
            return
        name, shown = Path(path).name, len(reader)
        declared = getattr(reader, "declared_frames", None)
        if declared and declared > shown:
            text = f"{name} ends early: opened {shown} of the {declared} frames it lists"
        else:
            text = f"{name} ends early (cut short or damaged): opened its first {shown} frames"
        self.statusBar().showMessage(text, 20000)

    def open_project(self: Any, path: str, *, asked: bool = False) -> bool:
        """Open a project file: its video, objects, prompts and stored masks."""
        if not (asked or self._may_replace_document()):
            return False
        try:
            project, store = self.project.read(path)
        except (ProjectError, OSError) as exc:
            self.report_error("Cannot open project", str(exc))
            return False
        if not self._apply_project(project, store):
            return False
        self.project.path = path
        self.project.start_autosave()
        self.settings.add_recent_file(path)
        self.mark_saved()
        return True

    def _apply_project(self: Any, project: Any, store: Any) -> bool:
        if not self._load_video(project.video_path):
            return False
        try:
            self.project.apply(project, store)
        except ValueError as exc:
            self.report_error("Cannot open project", str(exc))
            return False
        self.undo_stack.clear()
        return True

    # ---- saving ----------------------------------------------------------------------------
    def save_project(self: Any, path: str | None = None, *, ask: bool = False) -> bool:
        if self.document.num_frames == 0:
            return False
        target = path or (None if ask else self.project.path)
        if target is None:
            suggested = str(
                Path(self.document.video_path or "untitled").with_suffix(PROJECT_SUFFIX)
            )
            target, _ = QFileDialog.getSaveFileName(self, "Save project", suggested, PROJECT_FILTER)
            if not target:
                return False
        if not target.endswith(PROJECT_SUFFIX):
            target += PROJECT_SUFFIX
        try:
            self.project.save(target)
        except (OSError, ValueError) as exc:
            self.report_error("Cannot save project", str(exc))
            return False
        self.mark_saved()
        self.settings.add_recent_file(target)
        self._update_title()
        self.statusBar().showMessage(f"Saved {target}", 4000)
        return True

    # ---- recovery --------------------------------------------------------------------------
    def offer_recovery(self: Any) -> bool:
        """If a crashed session left work behind, ask whether to recover it."""
        autosaver = self.project.autosaver
        for info in self.project.find_recoverable():
            answer = self.ask_recovery(info)
            if answer == "discard":
                autosaver.discard(info)
                continue
            if answer != "recover":
                return False
            try:
                project, store = autosaver.recover(info)
            except (ProjectError, OSError) as exc:
                self.report_error("Cannot recover", str(exc))
                continue
            if self._apply_project(project, store):
                self.project.path = info.project_path
                self.project.start_autosave()
                self.project.flush()
                autosaver.discard(info)
                # Recovered work is not on disk under the user's name yet.
                self.undo_stack.resetClean()
                self.mark_unsaved()
                self._update_title()
                return True
        return False

    def _ask_recovery_dialog(self: Any, info: RecoveryInfo) -> str:
        box = QMessageBox(self)
        box.setWindowTitle("Recover unsaved work?")
        box.setText(
            f"Masklet did not shut down cleanly. Recover the work on {Path(info.video_path).name}"
            f" ({info.num_objects} objects, {info.num_prompts} prompts, {info.num_masks} masks)?"
        )
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "recover" if clicked is recover else "discard" if clicked is discard else "later"

    # ---- model -----------------------------------------------------------------------------
    def choose_model(self: Any) -> None:
        """Pick a checkpoint (and device); the settings keep it once it has loaded."""
        choice = _run_model_dialog(self, self.settings, self.model_description())
        if choice is None:
            return
        checkpoint, device = choice
        self.load_model(checkpoint, device, remember=True)

    def switch_device(self: Any, device: str) -> None:
        """Reload the model on `device`; until that works the menu and settings keep the old."""
        self.check_device(self.settings.device)
        if self.settings.checkpoint:
            self.load_model(self.settings.checkpoint, device, remember=True)
        else:
            self.settings.device = device
            self.check_device(device)

    def show_help(self: Any) -> None:
        from app.gui.help_dialog import HelpDialog

        HelpDialog(self).open()

    def show_export(self: Any) -> None:
        if self.document.num_frames == 0:
            self.statusBar().showMessage("Open a video before exporting", 4000)
            return
        from app.gui.export_dialog import ExportDialog
        from app.project import mask_folder

        opener, path = self.video_opener, self.document.video_path
        project = self.project.path
        inputs = [project, str(mask_folder(project))] if project else []
        self.export_dialog = ExportDialog(
            self.document, lambda: opener(path), parent=self, inputs=inputs
        )
        self.export_dialog.open()


def _run_model_dialog(parent: Any, settings: Any, current: str | None) -> tuple[str, str] | None:
    """Ask for a checkpoint and device; None when the user cancels."""
    dialog = ModelDialog(parent, device=settings.device, current=current)
    if not dialog.exec() or dialog.checkpoint_path() is None:
        return None
    return str(dialog.checkpoint_path()), dialog.device()
