"""Track > Find New Instances While Propagating, with real events: off by default; on, a
propagation runs the finder every N frames with the accepted phrases, and an instance that
overlaps no tracked object becomes "PHRASE N", keyed on the frame where it was found; undo
and redo take it out and put it back; nothing tracked is replaced; off, nothing is added."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from conftest import click_frame, make_window, when_modal
from fake_engine import SPEED, MaskPrompt, MaskSession, disc, fake_engine
from find_helpers import find_phrase
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialogButtonBox, QInputDialog, QSpinBox

ENTERS_AT = 4  # the frame the second object appears on
ENTER_X, ENTER_Y = 100.0, 90.0
FIRST_X, FIRST_Y = 30.0, 40.0


def frame_index(frame: np.ndarray) -> int:
    """Which frame of conftest's video this is: its red square starts 20 + 3 * index px in."""
    red = (frame[..., 0] > 150) & (frame[..., 1] < 100)
    return round((int(np.nonzero(red.any(axis=0))[0][0]) - 20) / 3)


@dataclass
class Instances:
    masks: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor


class SceneFinder:
    """Finds, on frame f: the clicked object where the fake tracker has it (already tracked),
    from ENTERS_AT on a second one moving as the tracker will move it, and a weak (0.3)
    detection the threshold leaves out."""

    def __init__(self, *, with_tracked: bool = True) -> None:
        self.with_tracked = with_tracked
        self.searched: list[tuple[int, str, float]] = []
        self.threads: set[int] = set()

    def parameters(self):
        return [torch.zeros(10)]

    def find(self, frame, phrase=None, boxes=None, box_labels=None, threshold=0.5, **kw):
        index = frame_index(frame)
        self.searched.append((index, phrase, threshold))
        self.threads.add(threading.get_ident())
        size = frame.shape[:2]
        found = [(0.3, disc(size, 10, 10))]
        if self.with_tracked:
            found.append((0.95, disc(size, FIRST_X + SPEED * index, FIRST_Y)))
        if index >= ENTERS_AT:
            found.append((0.8, disc(size, ENTER_X + SPEED * (index - ENTERS_AT), ENTER_Y)))
        kept = sorted(((s, m) for s, m in found if s > threshold), key=lambda f: -f[0])
        masks = np.stack([m for _, m in kept]) if kept else np.zeros((0, *size), bool)
        boxes = [
            [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in map(np.nonzero, masks)
        ]
        return Instances(
            torch.from_numpy(masks),
            torch.tensor([s for s, _ in kept]),
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        )


class AcceptedPhrases:
    """Stands in for find-gui's `window.find_controller` (its `accepted_phrases()`)."""

    def __init__(self, phrases: list[str]) -> None:
        self.phrases = phrases

    def accepted_phrases(self) -> list[str]:
        return list(self.phrases)


def open_scene(qtbot, settings, recovery_root, video_path, finder: SceneFinder):
    """The window on the fake tracker (mask prompts taken) and `finder`, the video open."""
    settings.finder_checkpoint = "sam3.pt"
    sessions: list[MaskSession] = []

    def open_session(_model, source, device):
        sessions.append(MaskSession(source, device, frame_delay=0.03))
        return sessions[-1]

    engine = replace(
        fake_engine(),
        open_session=open_session,
        make_prompt=MaskPrompt,
        load_finder=lambda path, device: finder,
    )
    window = make_window(qtbot, settings, recovery_root, engine=engine)
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        assert window.open_video(str(video_path))
    return window, sessions


@pytest.fixture
def scene(qtbot, settings, recovery_root, video_path):
    finder = SceneFinder()
    window, sessions = open_scene(qtbot, settings, recovery_root, video_path, finder)
    window.find_controller = AcceptedPhrases(["person"])
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
        click_frame(window, FIRST_X, FIRST_Y)
    yield window, finder, sessions
    window.close()


def track_menu_click(qtbot, window, text: str) -> None:
    """A real click on the Track menu's entry `text` (its text without the & marks)."""
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Track")
    menu.popup(QPoint(0, 0))
    qtbot.waitExposed(menu)
    action = next(a for a in menu.actions() if a.text().replace("&", "") == text)
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    menu.hide()


def propagate(qtbot, window) -> None:
    window.activateWindow()  # a dialog closed before may have had the focus
    qtbot.waitUntil(window.isActiveWindow)
    window.canvas.setFocus()
    with qtbot.waitSignal(window.client.propagation_finished, timeout=20000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_T)


def test_off_by_default_and_nothing_is_added(qtbot, scene):
    window, finder, _sessions = scene
    assert not window.actions.find_while_propagating.isChecked()
    propagate(qtbot, window)
    assert [o.name for o in window.document.objects()] == ["object 1"]
    assert finder.searched == [] and window.finder.info is None  # not even loaded


def test_a_new_instance_becomes_an_object_keyed_where_found(qtbot, scene):
    window, finder, sessions = scene
    doc = window.document
    first = doc.objects()[0].obj_id
    first_prompts = doc.prompts(0, first)

    def type_four(dialog: QInputDialog) -> None:
        spin = dialog.findChild(QSpinBox)
        spin.selectAll()
        qtbot.keyClicks(spin, "4")
        # OK by mouse: offscreen, Return could go to a shortcut of the focus the window had.
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    when_modal(QInputDialog, type_four)
    track_menu_click(qtbot, window, "Find Every 16 Frames…")
    assert window.settings.find_every == 4
    assert window.actions.find_every.text() == "Find &Every 4 Frames…"
    with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
        # Loads the remembered finder.
        track_menu_click(qtbot, window, "Find New Instances While Propagating")
    assert window.actions.find_while_propagating.isChecked()
    propagate(qtbot, window)

    searched = [f for f, _p, _t in finder.searched]
    # Every 4 frames, not the start frame; a due frame is skipped while the object found
    # before has not reached the session yet (a slow machine), never searched twice.
    assert searched[0] == ENTERS_AT and set(searched) <= {4, 8, 12, 16}
    assert len(searched) == len(set(searched))
    assert {p for _f, p, _t in finder.searched} == {"person"}
    assert {t for _f, _p, t in finder.searched} == {0.5}
    assert threading.get_ident() not in finder.threads
    names = [(o.name, o.category) for o in doc.objects()]
    assert names == [("object 1", ""), ("person 1", "person")]
    found = doc.objects()[1].obj_id
    assert doc.keyframes(found) == [ENTERS_AT] and doc.prompts(ENTERS_AT, found).mask is not None
    assert "person" in [label.name for label in doc.labels()]
    assert doc.prompts(0, first) == first_prompts and doc.keyframes(first) == [0]
    assert ("add_mask", ENTERS_AT, found) in [c[:3] for c in sessions[-1].calls]
    assert doc.mask(19, found) is not None  # tracked from there to the end
    message = window.statusBar().currentMessage()
    assert message == "Propagation finished: 20 frames; 1 new object found while propagating"

    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [o.name for o in doc.objects()] == ["object 1"]
    assert "person" not in [label.name for label in doc.labels()]
    qtbot.waitUntil(lambda: ("remove_object", found) in sessions[-1].calls, timeout=5000)
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, redo)
    assert [o.name for o in doc.objects()] == ["object 1", "person 1"]
    assert doc.keyframes(found) == [ENTERS_AT]

    finder.searched.clear()
    track_menu_click(qtbot, window, "Find New Instances While Propagating")  # off again
    assert not window.actions.find_while_propagating.isChecked()
    propagate(qtbot, window)
    assert finder.searched == [] and len(doc.objects()) == 2


def test_without_accepted_phrases_the_toggle_says_what_to_do(qtbot, scene):
    window, finder, _sessions = scene
    window.find_controller = AcceptedPhrases([])
    with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
        window.actions.find_while_propagating.trigger()
    assert window.statusBar().currentMessage().startswith("Find objects by name first (Ctrl+F)")
    propagate(qtbot, window)
    assert finder.searched == [] and len(window.document.objects()) == 1


@pytest.mark.slow
def test_with_the_real_tracker_the_found_object_is_tracked_from_its_frame(
    qtbot, settings, recovery_root, tmp_path
):
    """The real engine (random-init sam2.1-tiny at 256) takes the found mask as a keyframe in
    the middle of the pass and tracks it to the last frame; the clicked object is untouched."""
    from conftest import write_video

    from app.gui.worker.engine import random_model_loader, real_engine

    settings.finder_checkpoint = "sam3.pt"
    # Random weights track the clicked object anywhere: only the entering one is found.
    finder = SceneFinder(with_tracked=False)
    engine = replace(
        real_engine(random_model_loader("sam2.1-tiny", image_size=256)),
        load_finder=lambda path, device: finder,
    )
    window = make_window(qtbot, settings, recovery_root, engine=engine)
    try:
        video = write_video(tmp_path / "short.mp4", num_frames=7)
        with qtbot.waitSignal(window.session.session_ready, timeout=60000):
            assert window.open_video(str(video))
        window.find_controller = AcceptedPhrases(["person"])
        with qtbot.waitSignal(window.client.mask_ready, timeout=60000):
            click_frame(window, FIRST_X, FIRST_Y)
        window.settings.find_every = 4
        with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
            window.actions.find_while_propagating.trigger()
        first = window.document.objects()[0].obj_id
        failures: list = []
        window.client.job_failed.connect(failures.append)
        window.canvas.setFocus()
        with qtbot.waitSignal(window.client.propagation_finished, timeout=180000):
            qtbot.keyClick(window.canvas, Qt.Key.Key_T)
        doc = window.document
        assert not failures
        assert [o.name for o in doc.objects()] == ["object 1", "person 1"]
        found = doc.objects()[1].obj_id
        assert doc.keyframes(found) == [ENTERS_AT] and doc.keyframes(first) == [0]
        assert [f for f, _p, _t in finder.searched] == [4]
        # Tracked after the frame it was found on: the engine computed a state there.
        assert doc.mask_state(6, found) != 0
    finally:
        window.close()


def test_found_with_the_find_bar_then_more_while_propagating(
    qtbot, settings, recovery_root, video_path
):
    """The whole flow with the real Find bar: Ctrl+F loads the remembered finder, "person" and
    Enter accept the one proposal over the bar's threshold on frame 0; with the toggle on,
    a propagation finds the second person where it enters, at the bar's threshold."""
    finder = SceneFinder()
    window, _sessions = open_scene(qtbot, settings, recovery_root, video_path, finder)
    try:
        with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
            qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        find_phrase(qtbot, window, "person")
        qtbot.keyClick(window.find_controller.list.rows, Qt.Key.Key_Return)  # Accept all
        doc = window.document
        assert [(o.name, o.category) for o in doc.objects()] == [("person 1", "person")]
        window.find_controller.bar.set_threshold(0.75)
        window.pass_finds.set_every(4)
        track_menu_click(qtbot, window, "Find New Instances While Propagating")
        propagate(qtbot, window)
        objects = doc.objects()
        assert [o.name for o in objects] == ["person 1", "person 2"]
        assert doc.keyframes(objects[1].obj_id) == [ENTERS_AT]
        assert objects[1].finder_score == pytest.approx(0.8)
        during = [(f, t) for f, _p, t in finder.searched if f > 0]
        assert during and {t for _f, t in during} == {0.75} and during[0][0] == ENTERS_AT
        assert window.find_controller.accepted_phrases() == ["person"]
    finally:
        window.close()
