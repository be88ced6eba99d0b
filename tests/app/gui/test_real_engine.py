"""End to end with the real SAM 2 engine: a random-init sam2.1-tiny at image size 256."""

from __future__ import annotations

import pytest
from conftest import click_frame, drag_box, write_video
from PySide6.QtCore import Qt

from app.gui.document.annotations import MaskState
from app.gui.window.main_window import MainWindow
from app.gui.worker.engine import random_model_loader, real_engine
from app.project.autosave import Autosaver
from app.video import open_video

# Few frames: on a shared 2-core CPU one frame of two objects takes about a second.
FRAMES = 5


@pytest.fixture
def real_window(qtbot, settings, recovery_root):
    window = MainWindow(
        engine=real_engine(random_model_loader("sam2.1-tiny", image_size=256)),
        settings=settings,
        autosaver=Autosaver(root=recovery_root),
        video_opener=open_video,
    )
    window.confirm_discard = lambda: True
    qtbot.addWidget(window)
    window.resize(900, 650)
    window.show()
    with qtbot.waitSignal(window.client.model_loaded, timeout=60000):
        window.load_model("random-init", "cpu")
    yield window
    window.close()


@pytest.mark.slow
def test_click_box_propagate_correct_with_real_engine(qtbot, real_window, tmp_path):
    w = real_window
    video_path = write_video(tmp_path / "short.mp4", num_frames=FRAMES)
    failures = []
    w.client.job_failed.connect(failures.append)
    with qtbot.waitSignal(w.session.session_ready, timeout=60000):
        assert w.open_video(str(video_path))
    with qtbot.waitSignal(w.client.mask_ready, timeout=60000) as blocker:
        click_frame(w, 30, 50)
    result = blocker.args[0]
    assert result.mask is None or result.mask.shape == (120, 160)
    first = w.document.objects()[0].obj_id
    qtbot.keyClick(w.canvas, Qt.Key.Key_N)
    with qtbot.waitSignal(w.client.mask_ready, timeout=60000):
        drag_box(w, 90, 20, 140, 100)
    second = w.document.active_object
    assert second != first
    frames = []
    w.client.frame_ready.connect(lambda r: frames.append((r.frame, set(r.masks))))
    with qtbot.waitSignal(w.client.propagation_finished, timeout=120000) as blocker:
        qtbot.keyClick(w.canvas, Qt.Key.Key_T)
    assert not blocker.args[0].cancelled
    assert [f for f, _ in frames] == list(range(FRAMES))
    assert all(ids == {first, second} for _, ids in frames)
    for obj in (first, second):
        assert (w.document.state_track(obj) != MaskState.NONE).all()
    # Correct on a later frame; the result comes back for that frame and object.
    w.document.set_current_frame(3)
    w.document.set_active_object(first)
    with qtbot.waitSignal(w.client.mask_ready, timeout=60000) as blocker:
        click_frame(w, 70, 50, Qt.MouseButton.RightButton)
    assert (blocker.args[0].frame, blocker.args[0].obj_id) == (3, first)
    assert w.document.keyframes(first) == [0, 3]
    assert failures == []
    assert "sam2.1-tiny" in w.engine_status.model[1].text()
