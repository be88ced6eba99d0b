"""The Find bar: Ctrl+F, a phrase, Enter -> proposals; the threshold slider; Esc; no finder."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import make_window
from find_helpers import find_phrase, finder_engine, finding_window, open_with_finder, rows
from PySide6.QtCore import Qt

from app.gui.worker.finding import FIND_FLOOR, NO_FINDER


@pytest.fixture
def finding(qtbot, settings, recovery_root, video_path):
    yield from finding_window(qtbot, settings, recovery_root, video_path)


def test_enter_runs_the_real_finder_on_the_current_frame(
    qtbot, settings, recovery_root, video_path
):
    made: list = []
    w = open_with_finder(qtbot, settings, recovery_root, video_path, made, scripted=False)
    try:
        qtbot.keyClick(w.canvas, Qt.Key.Key_Right)
        find_phrase(qtbot, w, "bicycle")
        review = w.find_controller.review
        assert review is not None and review.frame == 1 and review.phrase == "bicycle"
        scores = [p.score for p in review.pending]
        assert scores and min(scores) > FIND_FLOOR and scores == sorted(scores, reverse=True)
        # Pin the threshold under the second-best score: exactly two are shown and listed.
        w.find_controller.bar.set_threshold(round(scores[1], 2) - 0.01)
        expected = sum(s > w.find_controller.bar.threshold for s in scores)
        assert len(rows(w)) == expected >= 2
        assert w.find_controller.layer.item_count == 2 * expected  # outline + score tag each
    finally:
        qtbot.waitUntil(lambda: not w.client.is_busy, timeout=10000)
        w.close()


def test_proposals_over_the_threshold_are_listed_and_outlined(qtbot, finding):
    find_phrase(qtbot, finding, "bicycle")
    (call,) = finding.finder_calls[0].calls
    assert call["phrase"] == "bicycle" and call["threshold"] == FIND_FLOOR
    assert call["thread"] != threading.get_ident()
    assert [r.split(" · ")[1] for r in rows(finding)] == ["0.90", "0.80", "0.70"]
    assert finding.find_controller.bar.count.text().strip() == "3 of 4"
    assert finding.find_controller.layer.item_count == 6
    assert finding.find_controller.dock.isVisible()


def test_threshold_slider_shows_more_or_fewer_without_finding_again(qtbot, finding):
    find_phrase(qtbot, finding, "bicycle")
    slider = finding.find_controller.bar.slider
    for _ in range(3):
        qtbot.keyClick(slider, Qt.Key.Key_PageDown)  # 0.50 -> 0.20
    assert len(rows(finding)) == 4
    for _ in range(6):
        qtbot.keyClick(slider, Qt.Key.Key_PageUp)  # -> 0.80: only 0.90 is over it
    assert finding.find_controller.bar.threshold == 0.8 and len(rows(finding)) == 1
    assert finding.find_controller.layer.item_count == 2
    assert len(finding.finder_calls[0].calls) == 1


def test_escape_cancels_a_running_find(qtbot, settings, recovery_root, video_path):
    made: list = []
    w = open_with_finder(qtbot, settings, recovery_root, video_path, made, slow=True)
    try:
        qtbot.keyClick(w.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        bar = w.find_controller.bar
        qtbot.keyClicks(bar.phrase, "dog")
        qtbot.keyClick(bar.phrase, Qt.Key.Key_Return)
        assert w.find_controller.is_finding and bar.running
        qtbot.waitUntil(lambda: bool(made[0].calls), timeout=5000)
        start = time.monotonic()
        with qtbot.waitSignal(w.client.find_ready, timeout=1000) as blocker:
            qtbot.keyClick(bar.phrase, Qt.Key.Key_Escape)
        assert blocker.args[0].cancelled and time.monotonic() - start < 1.0
        assert not w.find_controller.is_finding and not bar.running
        assert bar.message.text() == "Find cancelled" and rows(w) == []
    finally:
        qtbot.waitUntil(lambda: not w.client.is_busy, timeout=10000)
        w.close()


def test_no_finder_says_how_to_choose_one_in_one_line(qtbot, settings, recovery_root, video_path):
    w = make_window(qtbot, settings, recovery_root, engine=finder_engine([]))
    try:
        with qtbot.waitSignal(w.session.session_ready, timeout=10000):
            assert w.open_video(str(video_path))
        qtbot.keyClick(w.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        bar = w.find_controller.bar
        assert bar.message.text() == NO_FINDER
        qtbot.keyClicks(bar.phrase, "cat")
        bar.say("")
        with qtbot.waitSignal(w.client.find_ready, timeout=5000):
            qtbot.keyClick(bar.phrase, Qt.Key.Key_Return)
        assert bar.message.text() == NO_FINDER and "\n" not in NO_FINDER
        assert w.error_box is None and w.find_controller.review is None
        said: list[str] = []
        w.client.activity_changed.connect(lambda _a: said.append(bar.message.text()))
        with qtbot.waitSignal(w.client.finder_loaded, timeout=20000):
            w.client.load_finder("sam3.pt", "cpu")
        assert "Loading the finder…" in said and bar.message.text() == "Finder ready"
    finally:
        w.close()


def test_an_empty_phrase_asks_for_one_and_sends_nothing(qtbot, finding):
    qtbot.keyClick(finding.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = finding.find_controller.bar
    qtbot.keyClicks(bar.phrase, " \t ")
    qtbot.keyClick(bar.phrase, Qt.Key.Key_Return)
    assert bar.message.text().startswith("Type what to find")
    assert not finding.find_controller.is_finding and finding.finder_calls[0].calls == []


def test_a_huge_phrase_with_control_characters_is_cut_and_the_user_told(
    qtbot, settings, recovery_root, video_path
):
    made: list = []
    w = open_with_finder(qtbot, settings, recovery_root, video_path, made, scripted=False)
    try:
        qtbot.keyClick(w.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        bar = w.find_controller.bar
        bar.phrase.setText("x\u202e\x07 " + "a b " * 25_000)  # pasted: 100,004 characters
        with qtbot.waitSignal(w.client.find_ready, timeout=20000) as found:
            qtbot.keyClick(bar.phrase, Qt.Key.Key_Return)
            sent = bar.message.text()
        assert "cut to 100 characters" in sent and "control characters left out" in sent
        assert "\n" not in sent
        result = found.args[0]
        assert result.phrase.startswith("x a b") and len(result.phrase) <= 100
        assert result.truncated and len(result.scores) > 0  # 50 words: past 32 tokens
        qtbot.waitUntil(lambda: not w.find_controller.is_finding, timeout=5000)
        assert "first 32 tokens" in bar.message.text()
    finally:
        qtbot.waitUntil(lambda: not w.client.is_busy, timeout=10000)
        w.close()
