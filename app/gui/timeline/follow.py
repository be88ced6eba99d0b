"""Follow mode: the view shows each propagated frame until the user goes elsewhere.

While a propagation runs the view moves to every frame it delivers. Once the user
navigates (keys, timeline, playback) or prompts the frame in view, it stays where they
are and the timeline keeps filling in. The checkable Follow action (a button in the
progress area and a shortcut) returns to the live frame and follows it again.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QToolButton

from app.gui.document.annotations import AnnotationDocument
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import FrameMasks, PropagationSummary
from app.gui.worker.session_controller import SessionController


class FollowController(QObject):
    """Keeps the current frame on the live propagated frame while `action` is checked."""

    def __init__(
        self,
        document: AnnotationDocument,
        client: WorkerClient,
        session: SessionController,
        action: QAction,
        button: QToolButton,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._action = action
        self._running = False
        self._moving = False  # True while the follower itself sets the current frame
        self._live: int | None = None
        action.setIconText("Follow")
        action.setEnabled(False)
        button.setDefaultAction(action)
        action.toggled.connect(self._on_toggled)
        session.propagation_started.connect(self._on_started)
        client.frame_ready.connect(self._on_frame_ready)
        client.propagation_finished.connect(self._on_finished)
        document.current_frame_changed.connect(self._on_current_frame_changed)
        document.prompts_changed.connect(self._on_prompts_changed)

    @property
    def following(self) -> bool:
        return self._running and self._action.isChecked()

    @property
    def live_frame(self) -> int | None:
        """The frame the running propagation delivered last (its start before the first)."""
        return self._live if self._running else None

    def _go(self, frame: int) -> None:
        self._moving = True
        try:
            self._doc.set_current_frame(frame)
        finally:
            self._moving = False

    @Slot(str)
    def _on_started(self, _direction: str) -> None:
        self._running = True
        self._live = self._doc.current_frame
        self._action.setEnabled(True)
        self._action.setChecked(True)

    @Slot(object)
    def _on_frame_ready(self, result: FrameMasks) -> None:
        if not self._running:
            return
        self._live = result.frame
        if self._action.isChecked():
            self._go(result.frame)

    @Slot(object)
    def _on_finished(self, _summary: PropagationSummary) -> None:
        self._running = False
        self._action.setChecked(False)
        self._action.setEnabled(False)

    @Slot(bool)
    def _on_toggled(self, checked: bool) -> None:
        if checked and self._running and self._live is not None:
            self._go(self._live)

    @Slot(int)
    def _on_current_frame_changed(self, _frame: int) -> None:
        if self._running and not self._moving:
            self._action.setChecked(False)

    @Slot(int, int)
    def _on_prompts_changed(self, frame: int, _obj_id: int) -> None:
        # Prompting the frame in view means the user is working there: do not move away.
        if self._running and frame == self._doc.current_frame:
            self._action.setChecked(False)
