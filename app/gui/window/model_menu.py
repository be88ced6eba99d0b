"""What the Model menu holds beyond Choose Model, Device and Precision: the input size and
the marks on masks that an earlier model computed (accepted from this menu)."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QMenu, QStatusBar

from app.gui.document.annotations import AnnotationDocument
from app.gui.files.project_io import ProjectController
from app.gui.settings import AppSettings
from app.gui.window.input_size_menu import InputSizeMenu
from app.gui.worker.client import WorkerClient
from app.gui.worker.model_change import StaleMaskMarks


class ModelMenuHost(Protocol):
    """The parts of the window these menu entries use (the window itself, in the app)."""

    document: AnnotationDocument
    undo_stack: QUndoStack
    client: WorkerClient
    project: ProjectController
    settings: AppSettings

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name

    def load_model(self, checkpoint: str, device: str, *, remember: bool = False) -> None: ...

    def mark_unsaved(self) -> None: ...


def extend_model_menu(
    host: ModelMenuHost, menu: QMenu, input_size_submenu: QMenu
) -> tuple[StaleMaskMarks, InputSizeMenu]:
    """Adds Accept Previous Model's Masks to `menu` and fills Input Size; connects both."""
    # Parented to the menu: it lives as long as the window that owns the menu.
    stale_marks = StaleMaskMarks(host.document, host.undo_stack, host.statusBar().showMessage, menu)
    menu.addAction(stale_marks.accept_action)
    input_size = InputSizeMenu(
        input_size_submenu,
        get_settings=lambda: host.project.settings,
        app_settings=host.settings,
        load_model=host.load_model,
        changed=host.mark_unsaved,
        same_model=stale_marks.reconcile,
    )
    host.client.model_loaded.connect(stale_marks.on_model_loaded)
    host.project.settings_applied.connect(input_size.project_opened)
    return stale_marks, input_size
