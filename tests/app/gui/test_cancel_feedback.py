"""Cancelling a propagation says "Cancelling…" at once, before the worker stops."""

from __future__ import annotations

import pytest
from conftest import NUM_FRAMES, click_frame, make_window
from PySide6.QtCore import Qt

FRAME_DELAY = 0.4  # a slow fake engine: the frame in flight outlasts the check below


@pytest.fixture
def propagating(qtbot, settings, recovery_root, video_path):
    window = make_window(qtbot, settings, recovery_root, frame_delay=FRAME_DELAY)
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        window.open_video(str(video_path))
    with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
        click_frame(window, 40, 50)
    finished = []
    window.client.propagation_finished.connect(finished.append)
    window.propagate("forward")
    qtbot.waitUntil(lambda: window.progress.bar.value() >= 1, timeout=5000)
    assert "ETA" in window.progress.rate.text()
    yield window, finished
    window.close()


def _assert_cancelling_then_stopped(qtbot, window, finished) -> None:
    assert window.progress.rate.text() == "Cancelling…"
    assert not finished, "the worker had already stopped: the test shows nothing"
    assert not window.progress.cancel.isEnabled()
    qtbot.waitUntil(lambda: bool(finished), timeout=5000)
    assert finished[0].cancelled and finished[0].frames < NUM_FRAMES
    assert not window.progress.isVisible()


def test_escape_says_cancelling_at_once(qtbot, propagating):
    window, finished = propagating
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    _assert_cancelling_then_stopped(qtbot, window, finished)


def test_cancel_button_says_cancelling_at_once_and_next_run_starts_fresh(qtbot, propagating):
    window, finished = propagating
    qtbot.mouseClick(window.progress.cancel, Qt.MouseButton.LeftButton)
    _assert_cancelling_then_stopped(qtbot, window, finished)
    window.propagate("forward")
    assert window.progress.cancel.isEnabled()
    qtbot.waitUntil(lambda: "frames/s" in window.progress.rate.text(), timeout=5000)
    window.client.cancel()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5000)
