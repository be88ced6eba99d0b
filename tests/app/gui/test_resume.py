"""Exact resume through the app: save, close, reopen, correct, propagate (tiny real engine).

The engine state saved beside the project must make the reopened session continue bit for
bit as the first one did; a stale or damaged state is ignored with one status-bar line.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import click_frame, write_video
from PySide6.QtCore import Qt

from app.gui.window.main_window import MainWindow
from app.gui.worker.engine import random_model_loader, real_engine
from app.project.autosave import Autosaver
from app.video import open_video

FRAMES = 5


def _window(qtbot, settings, recovery_root) -> MainWindow:
    window = MainWindow(
        engine=real_engine(random_model_loader("sam2.1-tiny", image_size=64)),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    window.confirm_discard = lambda: True
    window.ask_recovery = lambda info: "later"
    qtbot.addWidget(window)
    window.resize(900, 650)
    window.show()
    with qtbot.waitSignal(window.client.model_loaded, timeout=60000):
        window.load_model("random-init", "cpu")
    return window


def _engine_state(window: MainWindow) -> dict:
    """Every stored tensor of the worker's session (read once the worker is idle)."""
    session = window.client._worker._session
    out = {}
    for o in session.object_ids:
        track = session._tracks[o]
        for f in sorted(track.outputs):
            x = session._bank.tensors(o, track, f)
            out[(o, f)] = [x.logits, x.obj_ptr, x.score, x.memory]
    return out


def _propagate(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.client.propagation_finished, timeout=120000) as blocker:
        qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    assert not blocker.args[0].cancelled


def _correct(qtbot, window: MainWindow) -> None:
    window.document.set_current_frame(3)
    with qtbot.waitSignal(window.client.mask_ready, timeout=60000):
        click_frame(window, 70, 50, Qt.MouseButton.RightButton)


def _first_session(qtbot, settings, recovery_root, tmp_path):
    """Click, propagate, save; returns the window and the saved project's path."""
    video = write_video(tmp_path / "clip.mp4", num_frames=FRAMES)
    window = _window(qtbot, settings, recovery_root)
    with qtbot.waitSignal(window.session.session_ready, timeout=60000):
        assert window.open_video(str(video))
    with qtbot.waitSignal(window.client.mask_ready, timeout=60000):
        click_frame(window, 30, 50)
    _propagate(qtbot, window)
    project = tmp_path / "clip.masklet"
    with qtbot.waitSignal(window.session.state_status, timeout=60000) as blocker:
        assert window.save_project(str(project))
    assert blocker.args[0].startswith("Engine state saved beside the project: ")
    return window, project


@pytest.mark.slow
def test_reopened_project_continues_exactly(qtbot, settings, recovery_root, tmp_path) -> None:
    first, project = _first_session(qtbot, settings, recovery_root, tmp_path)
    # Autosave keeps the recovery set's engine state too.
    state_dir = first.project.autosaver.state_dir
    qtbot.waitUntil(lambda: (state_dir / "index.json").is_file(), timeout=60000)
    _correct(qtbot, first)
    _propagate(qtbot, first)
    uninterrupted = _engine_state(first)
    first.close()

    second = _window(qtbot, settings, recovery_root)
    with qtbot.waitSignal(second.session.state_status, timeout=60000) as blocker:
        assert second.open_project(str(project))
    assert blocker.args[0].startswith("Resumed the engine state of 1 objects")
    assert second.session.last_state_report.action == "restored"
    _correct(qtbot, second)
    _propagate(qtbot, second)
    resumed = _engine_state(second)
    assert resumed.keys() == uninterrupted.keys()
    for key, tensors in uninterrupted.items():
        for a, b in zip(tensors, resumed[key], strict=True):
            assert torch.equal(a, b), key
    second.close()


@pytest.mark.slow
@pytest.mark.parametrize("change", ["video", "damaged", "missing"])
def test_stale_or_damaged_state_is_ignored_with_one_line(
    qtbot, settings, recovery_root, tmp_path, change
) -> None:
    first, project = _first_session(qtbot, settings, recovery_root, tmp_path)
    masks_before = first.document.store.get(0, first.document.objects()[0].obj_id)
    first.close()
    state = tmp_path / "clip.masklet-state"
    if change == "video":
        write_video(tmp_path / "clip.mp4", num_frames=FRAMES, fps=12)  # same size, new bytes
    elif change == "damaged":
        index = json.loads((state / "index.json").read_text())
        index["objects"][0]["outputs"][0]["size"] = -5
        (state / "index.json").write_text(json.dumps(index))
    else:
        for child in state.iterdir():
            child.unlink()
        state.rmdir()
    second = _window(qtbot, settings, recovery_root)
    with qtbot.waitSignal(second.session.state_status, timeout=60000) as blocker:
        assert second.open_project(str(project))
    line = blocker.args[0]
    assert line.startswith("Saved engine state ignored (") and "\n" not in line
    expected = {"video": "the video changed", "damaged": "damaged", "missing": "no saved"}
    assert expected[change] in line
    assert second.statusBar().currentMessage() == line
    # The masks still come from the project, and tracking still works from the keyframes.
    obj = second.document.objects()[0].obj_id
    assert (second.document.store.get(0, obj) == masks_before).all()
    _propagate(qtbot, second)
    second.close()
