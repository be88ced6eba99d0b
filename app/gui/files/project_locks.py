"""The window's side of one writer per project: which lock it holds, and read-only mode.

Opening a project takes its lock (`app.project.lock`); a lock a dead process left is
taken over without a word. When another running Masklet holds it, the user chooses:
open read-only (nothing is written to the project: saving it, autosave, and the engine
state beside it are off; Save As to another path works and takes that path's lock), or,
for a holder on another host that cannot be checked, take the lock over. Saving to a
new path takes that path's lock first and lets the old one go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from app.project.lock import LockHeld, ProjectLock, lock_path_for_project

READ_ONLY, TAKE_OVER, CANCEL = "read-only", "take-over", "cancel"


@dataclass
class Claim:
    """A lock taken for a project being opened or saved; None for read-only. Adopted once
    the opening or saving succeeded, abandoned otherwise (the old project keeps its own)."""

    lock: ProjectLock | None
    already_held: bool = False

    def abandon(self) -> None:
        if self.lock is not None and not self.already_held:
            self.lock.release()


class ProjectLocks:
    """The lock of the project the window has open, if it holds one."""

    def __init__(self, parent: QWidget) -> None:
        self._parent = parent
        self._lock: ProjectLock | None = None
        self.read_only = False
        # Overridable in tests; the dialog otherwise.
        self.ask: Callable[[LockHeld], str] = self._ask_dialog

    @property
    def held_path(self) -> Path | None:
        return None if self._lock is None else self._lock.path

    def for_open(self, project: str) -> Claim | None:
        """Lock `project` for opening, asking when it is held; None if the user cancelled."""
        path = lock_path_for_project(project)
        if self._lock is not None and self._lock.path == path:
            return Claim(self._lock, already_held=True)
        try:
            return Claim(ProjectLock.acquire(path))
        except LockHeld as held:
            answer = self.ask(held)
            if answer == READ_ONLY:
                return Claim(None)
            if answer != TAKE_OVER:
                return None
            return Claim(ProjectLock.acquire(path, force=True))
        except OSError:
            return Claim(None)  # a folder we cannot write to: nothing could be saved there

    def for_save(self, project: str) -> Claim | str:
        """Lock `project` before saving there; the claim, or why it cannot be saved."""
        path = lock_path_for_project(project)
        if self._lock is not None and self._lock.path == path:
            return Claim(self._lock, already_held=True)
        try:
            return Claim(ProjectLock.acquire(path))
        except LockHeld as held:
            who = held.holder.describe() if held.holder is not None else "another process"
            return f"{project} is open in another Masklet ({who}); save it under another name"
        except OSError as exc:
            return f"cannot lock {project}: {exc.strerror or exc}"

    def adopt(self, claim: Claim) -> None:
        """The project opened or saved: hold its lock (or none, read-only) from now on."""
        if claim.already_held:
            self.read_only = False
            return
        self.release()
        self._lock = claim.lock
        self.read_only = claim.lock is None

    def release(self) -> None:
        """Let the lock go (a new video, closing the window)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.read_only = False

    def _ask_dialog(self, held: LockHeld) -> str:
        box = QMessageBox(self._parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Project in use")
        name = held.path.name.removesuffix(".lock")
        box.setText(f"{name} is open in another Masklet.")
        who = held.holder.describe() if held.holder is not None else "another process"
        detail = f"Held by {who}. Two windows writing one project would overwrite each other."
        if not held.on_this_host:
            detail += " That host cannot be checked from here: take over only if it has quit."
        box.setInformativeText(detail)
        read_only = box.addButton("Open Read-Only", QMessageBox.ButtonRole.AcceptRole)
        take_over = None
        if not held.on_this_host:
            take_over = box.addButton("Take Over", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(read_only)
        box.exec()
        clicked = box.clickedButton()
        if clicked is read_only:
            return READ_ONLY
        return TAKE_OVER if take_over is not None and clicked is take_over else CANCEL
