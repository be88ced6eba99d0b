"""The export dialog writes the same scores (and the same document) as `masklet export`.

Issue 28, item 1: the dialog exported a copy of the mask store that had lost the predicted
IoUs, so every annotation said 1.0. The walkthrough: two objects, propagate, save, close,
move the engine state away, reopen, propagate a few frames more, save, export through the
dialog with real events and through the CLI, and compare annotation by annotation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fake_engine
import pytest
from conftest import click_frame, make_window
from PySide6.QtCore import Qt

from app.gui.files.project_io import state_folder
from app.headless.cli import main as cli_main

N_OBJECTS = 2


@pytest.fixture(autouse=True)
def varying_iou(monkeypatch):
    """Predicted IoUs that differ by object and frame, so a mix-up cannot pass."""
    plain = fake_engine.FakeSession.result

    def result(self, obj_id, frame):
        r = plain(self, obj_id, frame)
        return fake_engine.ObjectResult(
            r.obj_id, r.mask, r.score, 0.5 + 0.01 * frame + 0.1 * obj_id
        )

    monkeypatch.setattr(fake_engine.FakeSession, "result", result)


def _two_objects_tracked(qtbot, window) -> None:
    for x, y in ((40, 50), (60, 90)):
        qtbot.keyClick(window.canvas, Qt.Key.Key_N)
        with qtbot.waitSignal(window.client.mask_ready, timeout=5000):
            click_frame(window, x, y)
    with qtbot.waitSignal(window.client.propagation_finished, timeout=10000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_T)


def _dialog_export(qtbot, window, fmt: str, out) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.export_dialog
    qtbot.waitExposed(dialog)
    dialog.format.setFocus()
    while dialog.format.currentData() != fmt:
        qtbot.keyClick(dialog.format, Qt.Key.Key_Down)
    dialog.output.selectAll()
    qtbot.keyClicks(dialog.output, str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=20000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    dialog.close()


def _reopened_and_extended(qtbot, opened, settings, tmp_path):
    _two_objects_tracked(qtbot, opened)
    path = str(tmp_path / "clip.masklet")
    assert opened.save_project(path)
    opened.close()
    if Path(state_folder(path)).exists():  # the fake engine keeps no state; the real one does
        shutil.move(state_folder(path), tmp_path / "state-moved-away")
    other = make_window(qtbot, settings, tmp_path / "recovery2")
    with qtbot.waitSignal(other.session.session_ready, timeout=10000):
        assert other.open_path(path)
    other.document.set_current_frame(3)
    # A correction on frame 3, then a propagation from there over frames computed before.
    with qtbot.waitSignal(other.client.mask_ready, timeout=5000):
        click_frame(other, 52, 52)
    with qtbot.waitSignal(other.client.propagation_finished, timeout=10000):
        qtbot.keyClick(other.canvas, Qt.Key.Key_T)
    assert other.save_project(path)
    return other, path


@pytest.mark.parametrize("fmt", ["coco", "ytvis"])
def test_dialog_export_matches_cli_scores(qtbot, opened, settings, tmp_path, fmt):
    window, project = _reopened_and_extended(qtbot, opened, settings, tmp_path)
    try:
        gui_out = tmp_path / f"gui-{fmt}.json"
        _dialog_export(qtbot, window, fmt, gui_out)
    finally:
        window.close()
    cli_out = tmp_path / f"cli-{fmt}.json"
    assert cli_main(["export", project, "--format", fmt, "--out", str(cli_out)]) == 0
    gui, cli = json.loads(gui_out.read_text()), json.loads(cli_out.read_text())
    assert len(gui["annotations"]) == len(cli["annotations"]) >= N_OBJECTS
    for ours, theirs in zip(gui["annotations"], cli["annotations"], strict=True):
        assert ours["track_id"] == theirs["track_id"]
        assert ours["score"] == theirs["score"]
        if fmt == "ytvis":
            assert ours["scores"] == theirs["scores"]
    scores = [a["score"] for a in gui["annotations"]]
    if fmt == "ytvis":
        scores = [s for a in gui["annotations"] for s in a["scores"] if s is not None]
    # Every mask here came from the (fake) model, so none is a user's 1.0.
    assert 1.0 not in scores and len(set(scores)) > N_OBJECTS
    # Nothing else differs either: one document, whichever way it was exported.
    assert gui == cli
