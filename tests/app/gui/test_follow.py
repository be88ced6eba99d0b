"""Follow mode and prompting during a propagation, with real key and mouse events.

The fake engine (slowed down) covers navigation and Follow; the tiny real engine checks
that clicks ahead of and behind a running pass give the masks of the idle order.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import NUM_FRAMES, click_frame, make_window, write_video
from fake_engine import FakePrompt, FakeSession
from PySide6.QtCore import Qt

from app.gui.document.annotations import MaskState
from app.gui.window.main_window import MainWindow
from app.gui.worker.engine import Engine, random_model_loader, real_engine
from app.project.autosave import Autosaver
from app.video import open_video


@pytest.fixture
def slow(qtbot, settings, recovery_root, video_path):
    """The window on the test video, its fake engine taking 0.1 s a frame."""
    sessions: list[FakeSession] = []
    w = make_window(qtbot, settings, recovery_root, frame_delay=0.1, sessions=sessions)
    with qtbot.waitSignal(w.session.session_ready, timeout=10000):
        assert w.open_video(str(video_path))
    w.fake_sessions = sessions
    yield w
    w.client.cancel()
    w.close()


def key(qtbot, w: MainWindow, k: Qt.Key, times: int = 1) -> None:
    for _ in range(times):
        qtbot.keyClick(w.canvas, k)


def start_pass(qtbot, w: MainWindow, seen: list[int]) -> None:
    w.client.frame_ready.connect(lambda r: seen.append(r.frame))
    with qtbot.waitSignal(w.client.mask_ready, timeout=5000):
        click_frame(w, 40, 50)
    key(qtbot, w, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)


def test_navigating_away_stays_and_follow_returns(qtbot, slow):
    w, doc, seen = slow, slow.document, []
    start_pass(qtbot, w, seen)
    assert w.follow.following and doc.current_frame == seen[-1]
    assert w.progress.isVisible() and w.progress.follow.isChecked()
    key(qtbot, w, Qt.Key.Key_Home)
    assert doc.current_frame == 0 and not w.follow.following
    obj = doc.objects()[0].obj_id
    qtbot.waitUntil(lambda: len(seen) >= 8, timeout=5000)
    # The view stayed; the timeline kept filling in behind it.
    assert doc.current_frame == 0
    assert doc.mask_state(seen[-1], obj) != MaskState.NONE
    key(qtbot, w, Qt.Key.Key_L)
    assert w.follow.following and doc.current_frame == w.follow.live_frame == seen[-1]
    # It follows again: the next frames move the view.
    before = len(seen)
    qtbot.waitUntil(lambda: len(seen) > before + 1, timeout=5000)
    assert doc.current_frame == seen[-1]
    # Arrow keys count as navigating too; the button in the progress area returns.
    key(qtbot, w, Qt.Key.Key_Left)
    assert not w.follow.following
    here = doc.current_frame
    qtbot.waitUntil(lambda: seen[-1] != here + 1, timeout=5000)
    assert doc.current_frame == here
    qtbot.mouseClick(w.progress.follow, Qt.MouseButton.LeftButton)
    assert w.follow.following and doc.current_frame == w.follow.live_frame
    with qtbot.waitSignal(w.client.propagation_finished, timeout=10000):
        pass
    assert not w.actions.follow.isEnabled() and not w.progress.isVisible()


def test_prompts_ahead_and_behind_a_running_pass_are_both_honoured(qtbot, slow):
    w, doc, seen = slow, slow.document, []
    start_pass(qtbot, w, seen)
    obj = doc.objects()[0].obj_id
    masks: list[int] = []
    w.client.mask_ready.connect(lambda r: masks.append(r.frame))
    key(qtbot, w, Qt.Key.Key_End)
    key(qtbot, w, Qt.Key.Key_Left, 4)
    click_frame(w, 120, 40)  # frame 15, ahead of the pass
    key(qtbot, w, Qt.Key.Key_Home)
    key(qtbot, w, Qt.Key.Key_Right, 2)
    click_frame(w, 30, 80)  # frame 2, behind it
    assert w.client.is_propagating
    # Each click's own mask shows at once, long before the pass ends.
    qtbot.waitUntil(lambda: masks == [15, 2], timeout=5000)
    assert w.client.is_propagating and doc.mask(2, obj)[80, 30]
    with qtbot.waitSignal(w.client.propagation_finished, timeout=20000) as blocker:
        pass
    assert not blocker.args[0].cancelled
    assert doc.keyframes(obj) == [0, 2, 15] and doc.current_frame == 2
    # The same actions one after the other while idle give the same masks.
    idle = FakeSession([np.zeros((*doc.video_size, 3), np.uint8)] * NUM_FRAMES, "cpu")
    for frame in (0, 15, 2):
        xy = np.array([p[:2] for p in doc.prompts(frame, obj).points], float)
        idle.add_prompt(frame, obj, FakePrompt(xy, np.ones(len(xy), int)))
    for f in range(NUM_FRAMES):
        got = doc.mask(f, obj)
        want = idle.result(obj, f).mask
        np.testing.assert_array_equal(want if got is None else got, want)
        assert (got is None) == (not want.any())


def test_cancel_with_a_waiting_prompt_applies_it_and_tracks_from_it(qtbot, slow):
    w, doc, seen = slow, slow.document, []
    start_pass(qtbot, w, seen)
    obj = doc.objects()[0].obj_id
    key(qtbot, w, Qt.Key.Key_Home)
    key(qtbot, w, Qt.Key.Key_Right)
    finished = []
    w.client.propagation_finished.connect(finished.append)
    click_frame(w, 30, 80)  # frame 1
    key(qtbot, w, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: bool(finished), timeout=20000)
    session = w.fake_sessions[-1]
    assert ("add_prompt", 1, obj) in session.calls
    # After the cancel, a local pass started from the prompt (the fake: at its frame).
    assert ("propagate", None, "forward") in session.calls
    assert doc.keyframes(obj) == [0, 1] and doc.mask(1, obj)[80, 30]


class GatedSession:
    """A real session whose pass waits, once, after computing `gate` until released."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.gate: int | None = None
        self.arrived, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def propagate(self, *args, **kwargs):
        return self._gated(self._inner.propagate(*args, **kwargs))

    def _gated(self, inner):
        try:
            for result in inner:
                if result.frame == self.gate:
                    self.gate = None
                    self.arrived.set()
                    self.release.wait(120)
                yield result
        finally:
            inner.close()


@pytest.mark.slow
def test_clicks_during_a_real_pass_equal_the_idle_order(qtbot, settings, recovery_root, tmp_path):
    from model.engine.session import Prompt, TrackingSession

    frames, gated = 8, []
    base = real_engine(random_model_loader("sam2.1-tiny", image_size=256))

    def open_session(model, source, device):
        gated.append(GatedSession(base.open_session(model, source, device)))
        return gated[-1]

    w = MainWindow(
        engine=Engine(base.load_model, open_session, base.make_prompt),
        settings=settings,
        autosaver=Autosaver(root=recovery_root),
        video_opener=open_video,
    )
    w.confirm_discard = lambda: True
    qtbot.addWidget(w)
    w.resize(900, 650)
    w.show()
    path = write_video(tmp_path / "short.mp4", num_frames=frames)
    with qtbot.waitSignal(w.client.model_loaded, timeout=60000):
        w.load_model("random-init", "cpu")
    with qtbot.waitSignal(w.session.session_ready, timeout=60000):
        assert w.open_video(str(path))
    events: list[tuple[str, int, np.ndarray | None]] = []
    w.client.mask_ready.connect(lambda r: events.append(("mask", r.frame, r.mask)))
    w.client.frame_ready.connect(
        lambda r: events.append(("frame", r.frame, next(iter(r.masks.values()), None)))
    )
    with qtbot.waitSignal(w.client.mask_ready, timeout=60000):
        click_frame(w, 30, 50)
    doc = w.document
    obj = doc.objects()[0].obj_id
    gated[-1].gate = 3
    key(qtbot, w, Qt.Key.Key_T)
    qtbot.waitUntil(gated[-1].arrived.is_set, timeout=120000)
    # The worker holds frame 3: both clicks wait in its queue and are taken after it.
    key(qtbot, w, Qt.Key.Key_End)
    key(qtbot, w, Qt.Key.Key_Left, 2)
    click_frame(w, 45, 52)  # frame 5, ahead
    key(qtbot, w, Qt.Key.Key_Home)
    key(qtbot, w, Qt.Key.Key_Right)
    click_frame(w, 28, 50)  # frame 1, behind
    with qtbot.waitSignal(w.client.propagation_finished, timeout=300000):
        gated[-1].release.set()
    assert doc.keyframes(obj) == [0, 1, 5]
    shown = [(kind, f) for kind, f, _ in events]
    assert shown[:5] == [("mask", 0), *[("frame", f) for f in range(4)]]
    assert shown[5:7] == [("mask", 5), ("mask", 1)]
    assert shown[7:] == [("frame", f) for f in range(1, frames)]

    # The idle order on a fresh session: propagate until 3, cancel, prompt 5 and 1, propagate.
    model = random_model_loader("sam2.1-tiny", 256)("", "cpu")
    # In the precision the app chose (Auto: bf16 on CPUs with native bf16).
    idle = TrackingSession(
        model, open_video(str(path)), device="cpu", precision=gated[-1].precision
    )
    expected: dict[int, np.ndarray | None] = {}

    def prompt(frame: int) -> None:
        points = doc.prompts(frame, obj).points
        xy = np.array([(x, y) for x, y, _ in points], np.float32)
        labels = np.array([label for _, _, label in points], np.int32)
        expected[frame] = idle.add_prompt(frame, obj, Prompt(points=xy, labels=labels)).mask

    def run(engine_pass, stop: int | None = None) -> None:
        for result in engine_pass:
            r = result.objects[obj]
            expected[result.frame] = r.mask if r.score > 0 else None
            if result.frame == stop:
                break
        engine_pass.close()

    prompt(0)
    run(idle.propagate(0, "forward"), stop=3)
    prompt(5)
    prompt(1)
    run(idle.propagate(None, "forward"))
    for f in range(frames):
        want = expected[f] if expected[f] is not None else np.zeros(doc.video_size, bool)
        got = doc.mask(f, obj)
        np.testing.assert_array_equal(got if got is not None else np.zeros_like(want), want)
    w.close()
