"""A project another running Masklet has open is offered read-only (issue 28, item 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from conftest import click_frame, make_window, when_modal
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.project.lock import Holder, process_start, read_holder

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def saved(qtbot, opened, tmp_path) -> Path:
    """A project saved by a window that then quit (so it released its lock)."""
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    path = tmp_path / "a.masklet"
    assert opened.save_project(str(path))
    assert read_holder(lock_of(path)).pid == os.getpid()
    opened.close()
    assert not lock_of(path).exists()
    return path


@pytest.fixture
def other_masklet():
    """A live process standing in for another Masklet."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child
    child.kill()
    child.wait()


def lock_of(project: Path) -> Path:
    return project.with_name(project.name + ".lock")


def hold(project: Path, pid: int) -> None:
    holder = replace(Holder.this_process(), pid=pid, started=process_start(pid))
    lock_of(project).write_text(json.dumps(asdict(holder)))


def click_button(text: str):
    def handle(box: QMessageBox) -> None:
        (button,) = [b for b in box.buttons() if b.text().replace("&", "") == text]
        from pytestqt.qtbot import QtBot  # noqa: PLC0415 - only for the static click

        QtBot.mouseClick(button, Qt.MouseButton.LeftButton)

    return handle


def test_locked_project_opens_read_only_and_save_as_takes_the_new_lock(
    qtbot, settings, recovery_root, saved, other_masklet
):
    hold(saved, other_masklet.pid)
    before = saved.read_bytes()
    window = make_window(qtbot, settings, recovery_root)
    try:
        when_modal(QMessageBox, click_button("Open Read-Only"))
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            assert window.open_project(str(saved))
        assert "[read-only]" in window.windowTitle()
        assert not window.actions.save.isEnabled()
        assert not window.project._timer.isActive()  # no autosave for it
        assert read_holder(lock_of(saved)).pid == other_masklet.pid
        # An edit, then Ctrl+S: nothing is written into the other Masklet's project.
        window.canvas.setFocus()
        with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
            click_frame(window, 90, 60)
        qtbot.keyClick(window.canvas, Qt.Key.Key_S, CTRL)
        assert saved.read_bytes() == before
        copy = saved.with_name("b.masklet")
        assert window.save_project(str(copy))
        assert read_holder(lock_of(copy)).pid == os.getpid()
        assert read_holder(lock_of(saved)).pid == other_masklet.pid
        assert "[read-only]" not in window.windowTitle() and window.actions.save.isEnabled()
        assert window.project._timer.isActive()
    finally:
        window.close()
    assert not lock_of(saved.with_name("b.masklet")).exists()  # released on close


def test_cancelling_the_offer_leaves_the_window_as_it_was(
    qtbot, settings, recovery_root, saved, other_masklet
):
    hold(saved, other_masklet.pid)
    window = make_window(qtbot, settings, recovery_root)
    try:
        when_modal(QMessageBox, click_button("Cancel"))
        assert not window.open_project(str(saved))
        assert window.document.num_frames == 0 and window.project.path is None
    finally:
        window.close()


def test_a_killed_masklets_lock_opens_without_asking(qtbot, settings, recovery_root, saved):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    hold(saved, child.pid)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    window = make_window(qtbot, settings, recovery_root)
    try:
        window.locks.ask = lambda held: pytest.fail(f"asked about a dead holder: {held}")
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            assert window.open_project(str(saved))
        assert read_holder(lock_of(saved)).pid == os.getpid()
        assert "[read-only]" not in window.windowTitle()
    finally:
        window.close()
    assert not lock_of(saved).exists()
