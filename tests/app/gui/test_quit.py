"""Quitting ends the process promptly even while the worker is inside a long model call."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# The app as `masklet` runs it (`end_process` after the event loop), with a model load
# that takes 60 s; Ctrl+Q is pressed once the worker is inside it.
CHILD = r"""
import sys, time
from dataclasses import replace
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from fake_engine import fake_engine
from app.project.autosave import Autosaver
from app.gui.main import create_window, end_process
from app.gui.settings import AppSettings

settings_file, recovery = sys.argv[1], sys.argv[2]
app = QApplication([])

def slow_load(checkpoint, device):
    print("in model call", flush=True)
    QTimer.singleShot(0, app, quit_now)  # runs on the GUI thread
    time.sleep(60)

def quit_now():
    assert QTest.qWaitForWindowActive(window, 5000)  # shortcuts go to the active window
    QTest.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)

settings = AppSettings(QSettings(settings_file, QSettings.Format.IniFormat))
settings.checkpoint = "slow.pt"
window = create_window(
    engine=replace(fake_engine(), load_model=slow_load),
    settings=settings,
    autosaver=Autosaver(root=recovery),
)
window.show()
window.activateWindow()
code = app.exec()
print(f"event loop ended {time.monotonic()}", flush=True)
sys.exit(end_process(code))
"""


def test_quit_during_a_model_call_ends_the_process_promptly(tmp_path):
    settings_file = tmp_path / "settings.ini"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings_file), str(tmp_path / "recovery")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "in model call"
        pressed = time.monotonic()
        code = child.wait(timeout=30)
        elapsed = time.monotonic() - pressed
    finally:
        child.kill()
        out, err = child.communicate()
    assert code == 0, err
    assert "event loop ended" in out
    # The model call had 60 s to go; the process ended without waiting for it.
    assert elapsed < 2.0, f"the process took {elapsed:.2f} s to end after Ctrl+Q"
    assert "Traceback" not in err and "Destroyed while thread" not in err
    # What the window writes on close was written: the settings, with the geometry.
    assert "geometry" in settings_file.read_text().lower()
