"""The inference worker on its own thread, driven through WorkerClient with the fake engine."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fake_engine import fake_engine
from PySide6.QtCore import QThread

from app.gui.worker.client import WorkerClient
from app.gui.worker.inference_worker import PREFETCH_AHEAD


class FrameList:
    def __init__(self, n: int = 12, size: tuple[int, int] = (48, 64)) -> None:
        self._frames = [np.zeros((*size, 3), np.uint8) for _ in range(n)]

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._frames[i]


@pytest.fixture
def sessions():
    return []


def make_client(qtbot, sessions, **kw) -> WorkerClient:
    client = WorkerClient(fake_engine(sessions=sessions, **kw))
    with qtbot.waitSignal(client.session_opened, timeout=5000):
        client.load_model("fake.pt", "cpu")
        client.open_video(FrameList)
    return client


@pytest.fixture
def client(qtbot, sessions):
    c = make_client(qtbot, sessions)
    yield c
    c.shutdown()


def test_model_runs_on_worker_thread(qtbot, client, sessions):
    with qtbot.waitSignal(client.mask_ready, timeout=5000) as blocker:
        client.set_prompts(0, 1, [(20.0, 20.0, 1)], None)
    result = blocker.args[0]
    assert result.mask.shape == (48, 64) and result.mask[20, 20]
    assert threading.get_ident() not in sessions[0].thread_ids
    assert sessions[0].thread_ids


def test_superseded_prompt_results_are_dropped(qtbot, sessions):
    client = make_client(qtbot, sessions, frame_delay=0.05)
    try:
        with qtbot.waitSignal(client.mask_ready, timeout=5000):
            client.set_prompts(0, 2, [(5.0, 5.0, 1)], None)
        # Keep the worker busy so both prompt requests wait in its queue.
        client.propagate(0, "forward")
        results = []
        client.mask_ready.connect(results.append)
        first = client.set_prompts(0, 1, [(10.0, 10.0, 1)], None)
        second = client.set_prompts(0, 1, [(40.0, 30.0, 1)], None)
        qtbot.waitUntil(lambda: not client.is_busy, timeout=5000)
        assert first < second
        assert [r.request_id for r in results] == [second]
        assert results[0].mask[30, 40]
        # The stale request was skipped on the worker, not just hidden on the GUI side.
        assert sessions[0].calls.count(("add_prompt", 0, 1)) == 1
    finally:
        client.shutdown()


def test_propagation_streams_frames_and_cancel_keeps_results(qtbot, sessions):
    client = make_client(qtbot, sessions, frame_delay=0.05)
    try:
        with qtbot.waitSignal(client.mask_ready, timeout=5000):
            client.set_prompts(0, 1, [(10.0, 20.0, 1)], None)
        frames = []

        def on_frame(result):
            frames.append(result.frame)
            if len(frames) == 3:
                client.cancel()

        client.frame_ready.connect(on_frame)
        with qtbot.waitSignal(client.propagation_finished, timeout=10000) as blocker:
            client.propagate(0, "forward")
        summary = blocker.args[0]
        assert summary.cancelled
        # Cancel lands within one frame: the one in flight may still finish.
        assert 3 <= summary.frames <= 4
        assert frames == list(range(summary.frames))
    finally:
        client.shutdown()


def test_gui_thread_stays_free_during_propagation(qtbot, sessions):
    client = make_client(qtbot, sessions, frame_delay=0.05)
    try:
        with qtbot.waitSignal(client.mask_ready, timeout=5000):
            client.set_prompts(0, 1, [(10.0, 20.0, 1)], None)
        ticks = []
        from PySide6.QtCore import QTimer

        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(5)
        with qtbot.waitSignal(client.propagation_finished, timeout=10000):
            client.propagate(0, "forward")
        timer.stop()
        # 12 frames x 50 ms on the worker; the GUI timer kept firing meanwhile.
        assert len(ticks) >= 20
    finally:
        client.shutdown()


def test_newer_propagation_supersedes_older(qtbot, sessions):
    client = make_client(qtbot, sessions, frame_delay=0.02)
    try:
        with qtbot.waitSignal(client.mask_ready, timeout=5000):
            client.set_prompts(5, 1, [(10.0, 20.0, 1)], None)
        got = []
        client.frame_ready.connect(lambda r: got.append(r.request_id))
        first = client.propagate(5, "forward")
        second = client.propagate(5, "backward")
        qtbot.waitUntil(lambda: not client.is_busy, timeout=10000)
        assert first not in got and set(got) == {second}
    finally:
        client.shutdown()


def test_errors_reach_gui_and_worker_survives(qtbot, sessions):
    calls = {"n": 0}

    def fail(what):
        if what == "add_prompt" and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("CUDA out of memory")

    client = make_client(qtbot, sessions, fail=fail)
    try:
        with qtbot.waitSignal(client.job_failed, timeout=5000) as blocker:
            client.set_prompts(0, 1, [(10.0, 20.0, 1)], None)
        assert "out of memory" in blocker.args[0].message
        with qtbot.waitSignal(client.mask_ready, timeout=5000):
            client.set_prompts(0, 1, [(10.0, 20.0, 1)], None)
        # "Done" follows the result through the same queue, so it is at most one event away.
        qtbot.waitUntil(lambda: not client.is_busy, timeout=5000)
    finally:
        client.shutdown()


def test_bad_checkpoint_fails_cleanly(qtbot, sessions):
    client = WorkerClient(fake_engine(sessions=sessions))
    try:
        with qtbot.waitSignal(client.job_failed, timeout=5000) as blocker:
            client.load_model("bad.pt", "cpu")
        assert "not a SAM 2 checkpoint" in blocker.args[0].message
        with qtbot.waitSignal(client.job_failed, timeout=5000) as blocker:
            client.open_video(FrameList)
            client.set_prompts(0, 1, [(1.0, 1.0, 1)], None)
        assert "no model is loaded" in blocker.args[0].message
    finally:
        client.shutdown()


def test_idle_worker_encodes_ahead_of_focus(qtbot, client, sessions):
    client.focus(3)
    expected = set(range(3, 3 + PREFETCH_AHEAD + 1))
    qtbot.waitUntil(lambda: expected <= sessions[0]._encoded, timeout=5000)
    assert not {10, 11} & sessions[0]._encoded


def test_shutdown_stops_thread(qtbot, sessions):
    client = make_client(qtbot, sessions)
    thread: QThread = client._thread
    client.shutdown()
    assert not thread.isRunning()


@pytest.mark.slow
def test_propagation_keeps_the_encoded_window_around_focus(qtbot):
    """With the real engine's defaults, a pass neither fills the cache nor evicts the window."""
    from app.gui.worker.engine import random_model_loader, real_engine

    client = WorkerClient(real_engine(random_model_loader("sam2.1-tiny", image_size=64)))
    try:
        with qtbot.waitSignal(client.session_opened, timeout=60000):
            client.load_model("random-init", "cpu")
            client.open_video(lambda: FrameList(16))
        with qtbot.waitSignal(client.mask_ready, timeout=60000):
            client.set_prompts(0, 1, [(20.0, 20.0, 1)], None)
        session = client._worker._session
        client.focus(4)
        window = set(range(4 - PREFETCH_AHEAD // 2, 4 + PREFETCH_AHEAD + 1))
        qtbot.waitUntil(lambda: all(session.is_encoded(f) for f in window), timeout=60000)
        with qtbot.waitSignal(client.propagation_finished, timeout=120000) as blocker:
            client.propagate(0, "forward")
        assert blocker.args[0].frames == 16 and not blocker.args[0].cancelled
        qtbot.waitUntil(lambda: not client.is_busy, timeout=10000)
        encoded = {f for f in range(16) if session.is_encoded(f)}
        assert encoded == window | {0}
        assert session.cache_frames_used == len(encoded)
    finally:
        client.shutdown()


def test_many_signal_emits_do_not_abort_the_app():
    """PySide6 6.12 on CPython 3.11 spends a reference to True per emit; the app must survive."""
    from hostile import run_python

    code = """
import app.gui.worker.inference_worker
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Ticker(QObject):
    tick = Signal(object)

app = QCoreApplication([])
ticker = Ticker()
ticker.tick.connect(lambda value: None)
for i in range(100_000):  # a few signals per frame of a long propagation
    ticker.tick.emit(i)
print("survived")
"""
    outcome = run_python(code, timeout=60)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert outcome.stdout.strip() == "survived"
