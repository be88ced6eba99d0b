"""The question a start after a crash asks: recover the work a session left behind?"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from app.project.autosave import RecoveryInfo


def ask_recovery(parent: QWidget | None, info: RecoveryInfo) -> str:
    """ "recover", "discard" or "later" for the work `info` describes."""
    box = QMessageBox(parent)
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
