"""Model > Input Size and the marks on masks an earlier model computed (fake engine)."""

from __future__ import annotations

import json

import numpy as np
from conftest import NUM_FRAMES, click_frame
from PySide6.QtCore import Qt

from app.gui.document.stale_masks import MARKS_KEY, MODEL_KEY

CTRL = Qt.KeyboardModifier.ControlModifier


def _track_all(qtbot, window) -> int:
    """Click an object on frame 0 and propagate it through the video; returns its id."""
    window.document.set_current_frame(0)
    with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
        click_frame(window, 40, 50)
    with qtbot.waitSignal(window.client.propagation_finished, timeout=10000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    return window.document.objects()[0].obj_id


def _choose_size(qtbot, window, size: int):
    """Pick a size in the menu; returns the `ModelInfo` once the new session is open."""
    loaded = []
    window.client.model_loaded.connect(loaded.append)
    with qtbot.waitSignal(window.session.session_ready, timeout=5000):
        window.input_size.action(size).trigger()
    assert len(loaded) == 1
    return loaded[0]


def test_input_size_reloads_the_model_and_is_saved_in_the_project(qtbot, opened, tmp_path):
    assert opened.input_size.action(1024).isChecked()
    info = _choose_size(qtbot, opened, 512)
    assert info.image_size == 512 and ":512:" in info.identity
    assert opened.input_size.action(512).isChecked()
    assert opened.has_unsaved_changes()
    path = tmp_path / "sized.masklet"
    assert opened.save_project(str(path))
    assert json.loads(path.read_text())["settings"]["image_size"] == 512

    # Back at 1024 (the checkpoint's own size: no size is passed to the loader).
    assert _choose_size(qtbot, opened, 1024).image_size == 1024
    # Reopening the project loads the model at its size again.
    with qtbot.waitSignal(opened.client.model_loaded, timeout=5000) as blocker:
        assert opened.open_project(str(path))
    assert blocker.args[0].image_size == 512
    assert opened.input_size.action(512).isChecked()


def test_project_without_a_size_opens_at_1024(qtbot, opened, tmp_path):
    path = tmp_path / "old.masklet"
    assert opened.save_project(str(path))
    doc = json.loads(path.read_text())
    doc["settings"].pop("image_size", None)
    doc["settings"]["image_size"] = "huge"  # malformed: read as the default
    path.write_text(json.dumps(doc))
    _choose_size(qtbot, opened, 768)
    with qtbot.waitSignal(opened.client.model_loaded, timeout=5000) as blocker:
        assert opened.open_project(str(path))
    assert blocker.args[0].image_size == 1024
    assert opened.input_size.action(1024).isChecked()


def test_model_change_marks_computed_masks_until_recomputed(qtbot, opened):
    doc = opened.document
    obj = _track_all(qtbot, opened)
    assert doc.stale.count() == 0
    assert not opened.stale_marks.accept_action.isEnabled()
    _choose_size(qtbot, opened, 512)  # another model: the masks on screen are the old one's
    assert doc.stale.track(obj).all()
    assert doc.stale.count() == NUM_FRAMES
    assert "hatched in the timeline" in opened.statusBar().currentMessage()
    assert opened.stale_marks.accept_action.isEnabled()

    # Tracking again from frame 12 recomputes 12..19 and clears their marks only.
    seen: list[int] = []
    opened.client.frame_ready.connect(lambda r: seen.append(r.frame))
    doc.set_current_frame(12)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_T)
    marked = set(np.flatnonzero(doc.stale.track(obj)).tolist())
    assert seen and not marked & set(seen)
    assert set(range(1, 12)) <= marked


def test_accept_clears_marks_and_undo_brings_them_back(qtbot, opened):
    doc = opened.document
    obj = _track_all(qtbot, opened)
    _choose_size(qtbot, opened, 768)
    before = doc.stale.track(obj).copy()
    assert before.any()
    opened.stale_marks.accept_action.trigger()
    assert doc.stale.count() == 0 and not opened.stale_marks.accept_action.isEnabled()
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, CTRL)
    assert (doc.stale.track(obj) == before).all()
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Y, CTRL)
    assert doc.stale.count() == 0
    # Masks are untouched by accepting.
    assert doc.mask(10, obj) is not None


def test_painted_masks_are_not_marked(qtbot, opened):
    doc = opened.document
    obj = _track_all(qtbot, opened)
    doc.set_mask(5, obj, doc.mask(5, obj))  # as a brush stroke stores it: no prediction
    _choose_size(qtbot, opened, 512)
    assert not doc.stale.track(obj)[5] and doc.stale.track(obj)[6]


def test_marks_survive_save_and_reopen(qtbot, opened, tmp_path):
    doc = opened.document
    obj = _track_all(qtbot, opened)
    _choose_size(qtbot, opened, 512)
    doc.set_current_frame(15)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        qtbot.keyClick(opened.canvas, Qt.Key.Key_T)
    marks = doc.stale.track(obj).copy()
    assert marks.any() and not marks.all()
    path = tmp_path / "marked.masklet"
    assert opened.save_project(str(path))
    saved = json.loads(path.read_text())["settings"]
    assert ":512:" in saved[MODEL_KEY] and saved[MARKS_KEY]
    assert opened.open_project(str(path))
    obj = doc.objects()[0].obj_id
    assert (doc.stale.track(obj) == marks).all()
    assert f"Hatched: {int(marks.sum())} masks" in opened.tracks.tooltip_text()


def test_project_of_another_model_opens_marked_and_old_projects_unmarked(qtbot, opened, tmp_path):
    doc = opened.document
    obj = _track_all(qtbot, opened)
    path = tmp_path / "p.masklet"
    assert opened.save_project(str(path))
    data = json.loads(path.read_text())
    data["settings"][MODEL_KEY] = "c1:sam2.1-large:1024:0123"
    path.write_text(json.dumps(data))
    assert opened.open_project(str(path))
    obj = doc.objects()[0].obj_id
    assert doc.stale.track(obj).all()
    assert "sam2.1-large at 1024 px" in opened.statusBar().currentMessage()
    # A project from before the marks existed (no keys): nothing is marked.
    for key in (MODEL_KEY, MARKS_KEY):
        data["settings"].pop(key)
    path.write_text(json.dumps(data))
    assert opened.open_project(str(path))
    assert doc.stale.count() == 0
