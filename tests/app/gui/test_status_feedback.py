"""Status that says what is happening now: the Precision message, the canvas badge, the
first rate and ETA, the frames counted, and the engine facts before a model is chosen."""

from __future__ import annotations

import pytest
from conftest import click_frame, make_window
from fake_engine import fake_engine
from PySide6.QtCore import Qt
from test_precision import click_menu_action

from app.gui.window.main_window import MainWindow
from app.gui.worker.engine import describe_precision
from app.gui.worker.pass_progress import PassProgress
from app.project.autosave import Autosaver
from app.video import open_video

DELAY = 0.15  # per propagated frame: slow enough to act while a pass runs


@pytest.fixture
def sessions():
    return []


@pytest.fixture
def slow(qtbot, settings, recovery_root, video_path, sessions):
    """An open window on a fake engine that takes DELAY per propagated frame, with one
    object clicked on frame 0."""
    window = make_window(qtbot, settings, recovery_root, frame_delay=DELAY, sessions=sessions)
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        assert window.open_video(str(video_path))
    with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
        click_frame(window, 40, 50)
    yield window
    window.client.cancel()
    window.close()


def _note(choice: str) -> str:
    return f"Precision: {describe_precision(choice, 'cpu')[1]}"


def test_precision_message_follows_the_choice_in_effect(qtbot, slow):
    """Exact chosen during a pass takes effect after it. The pass's own end sends stats
    with Auto still in effect first; those must not be announced as Exact's message."""
    menu, names = slow.precision_submenu, slow.precision_menu.action
    bar = slow.statusBar()
    said: list[str] = []
    bar.messageChanged.connect(lambda text: said.append(text))
    with qtbot.waitSignal(slow.client.propagation_finished, timeout=20000):
        qtbot.keyClick(slow.canvas, Qt.Key.Key_T)
        qtbot.waitUntil(lambda: slow.progress.bar.value() >= 1, timeout=5000)
        click_menu_action(qtbot, menu, names("exact").text())
    qtbot.waitUntil(lambda: bar.currentMessage() == _note("exact"), timeout=5000)
    assert _note("auto") != _note("exact")
    assert [t for t in said if t.startswith("Precision:")] == [_note("exact")]
    for choice in ("fast", "auto"):
        click_menu_action(qtbot, menu, names(choice).text())
        qtbot.waitUntil(lambda c=choice: bar.currentMessage() == _note(c), timeout=5000)
        assert slow.engine_status.precision[1].text() == describe_precision(choice, "cpu")[0]


def test_no_precision_shown_before_a_model_is_chosen(qtbot, settings, recovery_root):
    window = MainWindow(
        engine=fake_engine(),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    label = window.engine_status.precision[1]
    with qtbot.waitSignal(window.client.stats_changed, timeout=5000):
        pass  # the startup precision request has been answered, with no model
    assert not label.isVisible() and "bf16" not in label.text()
    window.load_model(settings.checkpoint, "cpu")
    qtbot.waitUntil(label.isVisible, timeout=5000)
    assert label.text() == describe_precision("auto", "cpu")[0]
    window.close()


def test_badge_says_what_the_worker_does_now_and_what_is_queued(qtbot, slow):
    canvas, doc = slow.canvas, slow.document
    with qtbot.waitSignal(slow.client.propagation_finished, timeout=20000):
        qtbot.keyClick(canvas, Qt.Key.Key_T)
        qtbot.waitUntil(lambda: canvas.busy_text() == "Propagating…", timeout=5000)
        doc.set_current_frame(15)
        click_frame(slow, 70, 50)
        assert canvas.busy_text() == (
            "Propagating…\nEdit on frame 15 queued: applied after the frame in progress"
        )
        # Taken between two frames: the badge goes back to the pass, not to the edit.
        qtbot.waitUntil(lambda: doc.mask(15, doc.objects()[0].obj_id) is not None, timeout=5000)
        qtbot.waitUntil(lambda: canvas.busy_text() == "Propagating…", timeout=5000)
    qtbot.waitUntil(lambda: canvas.busy_text() is None, timeout=5000)


def test_encoding_badge_ends_with_its_job(qtbot, slow, sessions):
    """Frame 17 is encoded for a click, then a pass runs: the badge said "Encoding frame
    17…" only while that was happening (it used to stay through the next passes)."""
    canvas, doc = slow.canvas, slow.document
    seen: list[str | None] = []
    doc.set_current_frame(17)
    qtbot.waitUntil(lambda: sessions[-1].is_encoded(17), timeout=5000)  # encoded ahead
    qtbot.waitUntil(lambda: canvas.busy_text() is None, timeout=5000)
    sessions[-1]._encoded.discard(17)  # as if the cache had let it go: the click encodes
    slow.client.activity_changed.connect(lambda _a: seen.append(canvas.busy_text()))
    with qtbot.waitSignal(slow.client.mask_ready, timeout=5000):
        click_frame(slow, 90, 50)
    assert "Encoding frame 17…" in seen
    qtbot.waitUntil(lambda: canvas.busy_text() is None, timeout=5000)
    with qtbot.waitSignal(slow.client.propagation_finished, timeout=20000):
        qtbot.keyClick(canvas, Qt.Key.Key_T)
        qtbot.waitUntil(lambda: slow.progress.bar.value() >= 1, timeout=5000)
        assert canvas.busy_text() == "Propagating…"
    assert canvas.busy_text() is None


def test_rate_says_estimating_until_uncached_frames_are_measured(qtbot, slow, sessions):
    """Frames 1-6 are encoded ahead while idle: tracking them is cheaper than the rest,
    so no rate or ETA is shown from them (the app said 2.9 frames/s against 0.3)."""
    session = sessions[-1]
    qtbot.waitUntil(lambda: all(session.is_encoded(f) for f in range(7)), timeout=5000)
    rate = slow.progress.rate
    texts: list[tuple[int, str]] = []
    slow.client.propagation_progress.connect(lambda p: texts.append((p.done, rate.text())))
    with qtbot.waitSignal(slow.client.propagation_finished, timeout=20000):
        qtbot.keyClick(slow.canvas, Qt.Key.Key_T)
    cached = [text for done, text in texts if done <= 7]
    assert cached and all(text == "frames/s and ETA estimating…" for text in cached)
    later = [text for done, text in texts if done >= 10]
    assert later and all("frames/s · ETA" in text for text in later)


def test_cancelled_pass_counts_distinct_frames(qtbot, slow):
    """An edit behind the pass makes it compute frames again: the count and the bar say
    how many frames of the range are done, not how many results came."""
    frames: list[int] = []
    slow.client.frame_ready.connect(lambda r: frames.append(r.frame))
    doc = slow.document
    qtbot.keyClick(slow.canvas, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: len(frames) >= 8, timeout=10000)
    doc.set_current_frame(2)
    click_frame(slow, 44, 50)  # behind the pass: it restarts from frame 2
    qtbot.waitUntil(lambda: frames.count(3) == 2, timeout=10000)
    with qtbot.waitSignal(slow.client.propagation_finished, timeout=5000) as blocker:
        qtbot.keyClick(slow.canvas, Qt.Key.Key_Escape)
    summary = blocker.args[0]
    assert summary.cancelled and len(frames) > len(set(frames))
    assert summary.frames == len(set(frames))
    said = slow.statusBar().currentMessage()
    assert said == f"Propagation cancelled after {len(set(frames))} frames"
    assert slow.progress.bar.value() <= len(set(frames))


class _Session:
    num_frames = 10

    def __init__(self, encoded: set[int], keys: set[int]) -> None:
        self._encoded, self._keys = encoded, keys

    def is_encoded(self, frame: int) -> bool:
        return frame in self._encoded

    def keyframes(self, _obj: int) -> list[int]:
        return sorted(self._keys)


def test_pass_progress_counts_the_range_once_and_measures_typical_frames():
    progress = PassProgress(_Session({3, 4}, {3}), 1, 3, "forward")
    steps = [progress.frame_done(f, [1]) for f in (3, 4, 5, 4, 5, 6, 2)]
    assert [s.done for s in steps] == [1, 2, 3, 3, 3, 4, 4]  # 2 is outside the range
    assert all(s.total == 7 for s in steps)
    # Typical frames so far: 5 (warm-up went to 3) and 6; 4 was cached, the rest repeats.
    assert steps[-1].recent_fps > 0
    all_cached = PassProgress(_Session(set(range(10)), {0}), 1, 0, "forward")
    got = [all_cached.frame_done(f, [1]) for f in range(4)]
    assert got[-1].recent_fps > 0  # cached frames are what is left: they are measured
