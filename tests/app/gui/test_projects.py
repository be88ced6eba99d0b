"""Saving, opening, autosave and recovery, and bad inputs, through the main window."""

from __future__ import annotations

import pytest
from conftest import NUM_FRAMES, click_frame, make_window

from app.gui.document.annotations import MaskState


def _annotate(qtbot, window):
    with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
        click_frame(window, 40, 50)
    with qtbot.waitSignal(window.client.propagation_finished, timeout=10000):
        window.propagate("forward")
    return window.document.objects()[0].obj_id


def test_save_and_reopen_project(qtbot, opened, tmp_path, settings, recovery_root):
    obj = _annotate(qtbot, opened)
    opened.panel.model.setData(opened.panel.model.index(0, 1), "car")
    path = str(tmp_path / "clip.masklet")
    assert opened.save_project(path)
    assert opened.undo_stack.isClean()
    assert settings.recent_files()[0] == path
    opened.close()

    other = make_window(qtbot, settings, tmp_path / "recovery2")
    try:
        with qtbot.waitSignal(other.session.session_ready, timeout=10000):
            assert other.open_path(path)
        doc = other.document
        assert [o.name for o in doc.objects()] == ["car"]
        assert doc.keyframes(obj) == [0]
        # Stored masks show at once; the engine gets the prompts lazily.
        assert (doc.state_track(obj) == MaskState.MASK).all()
        assert other.session.unsynced == {(0, obj)}
        doc.set_current_frame(5)
        with qtbot.waitSignal(other.client.mask_ready, timeout=5000):
            click_frame(other, 100, 60)
        assert (5, obj) not in other.session.unsynced
        with qtbot.waitSignal(other.client.propagation_finished, timeout=10000):
            other.propagate("forward")
        assert other.session.unsynced == set()
    finally:
        other.close()


def test_corrupt_video_reports_and_keeps_app_usable(qtbot, opened, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a video" * 20)
    assert not opened.open_video(str(bad))
    assert "Cannot open video" in opened.last_error
    assert opened.error_box is not None and opened.error_box.isVisible()
    assert opened.document.num_frames == NUM_FRAMES
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)


def test_damaged_project_reports(qtbot, opened, tmp_path):
    _annotate(qtbot, opened)
    path = tmp_path / "p.masklet"
    assert opened.save_project(str(path))
    path.write_text('{"format": "masklet-project", "version": 1, "objects": [')
    assert not opened.open_project(str(path))
    assert "Cannot open project" in opened.last_error
    assert len(opened.document.objects()) == 1


def test_bad_checkpoint_reports_and_session_keeps_masks(qtbot, opened):
    obj = _annotate(qtbot, opened)
    with qtbot.waitSignal(opened.client.job_failed, timeout=5000):
        opened.load_model("bad.pt", "cpu")
    assert "not a SAM 2 checkpoint" in opened.last_error
    assert opened.document.mask(3, obj) is not None
    assert opened.engine_status.model[1].text() == "fake-tiny"
    # The model and session that worked before are still there.
    opened.document.set_current_frame(4)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 100, 60)
    assert opened.document.keyframes(obj) == [0, 4]


def test_unsaved_changes_are_confirmed_before_replacing(qtbot, opened, video_path):
    _annotate(qtbot, opened)
    asked = []
    opened.confirm_discard = lambda: asked.append(1) and False
    assert not opened.open_video(str(video_path))
    assert asked and len(opened.document.objects()) == 1


def test_autosave_and_recovery_offer(qtbot, opened, settings, recovery_root, tmp_path):
    obj = _annotate(qtbot, opened)
    # Masks are autosaved from a timer; wait for it, then simulate a crash by letting go
    # of the session without cleaning up.
    saver = opened.project.autosaver
    qtbot.waitUntil(lambda: not saver._masks_pending, timeout=5000)
    assert saver.session_dir is not None and (saver.session_dir / "recovery.masklet").exists()
    import os

    os.close(saver._lock_fd)
    saver._lock_fd = None
    saver._session = None

    other = make_window(qtbot, settings, recovery_root)
    try:
        answers = []
        other.ask_recovery = lambda info: answers.append(info) or "recover"
        with qtbot.waitSignal(other.session.session_ready, timeout=10000):
            assert other.offer_recovery()
        assert answers and answers[0].num_prompts == 1
        doc = other.document
        assert doc.keyframes(obj) == [0]
        assert (doc.state_track(obj) == MaskState.MASK).all()
        assert not other.undo_stack.isClean()
        assert other.project.find_recoverable() == []
    finally:
        other.close()


@pytest.mark.parametrize("answer", ["discard", "later"])
def test_recovery_declined(qtbot, opened, settings, recovery_root, answer):
    _annotate(qtbot, opened)
    saver = opened.project.autosaver
    import os

    os.close(saver._lock_fd)
    saver._lock_fd = None
    saver._session = None
    other = make_window(qtbot, settings, recovery_root)
    try:
        other.ask_recovery = lambda info: answer
        assert not other.offer_recovery()
        assert other.document.num_frames == 0
        left = other.project.find_recoverable()
        assert len(left) == (0 if answer == "discard" else 1)
    finally:
        other.close()


def test_propagated_masks_count_as_unsaved(qtbot, opened, tmp_path):
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    assert opened.save_project(str(tmp_path / "a.masklet"))
    assert not opened.has_unsaved_changes() and not opened.windowTitle().startswith("a.masklet *")
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        opened.propagate("forward")
    assert opened.undo_stack.isClean() and opened.has_unsaved_changes()
    assert "*" in opened.windowTitle()
    asked = []
    opened.confirm_discard = lambda: asked.append(1) or False
    opened.close()
    assert asked and opened.isVisible()
    opened.confirm_discard = lambda: True
