"""An engine state saved at one input size is not reused at another (tiny real engine)."""

from __future__ import annotations

import pytest
from conftest import write_video

from app.gui.worker.client import WorkerClient
from app.gui.worker.engine import random_model_loader, real_engine
from app.video import open_video


@pytest.mark.slow  # random-init SAM 2.1 tiny at 64 and 96 px: a few seconds of CPU
def test_state_of_another_input_size_is_ignored(qtbot, tmp_path):
    video = str(write_video(tmp_path / "clip.mp4", num_frames=3))
    client = WorkerClient(real_engine(random_model_loader("sam2.1-tiny", image_size=64)))
    folder, prompts = str(tmp_path / "clip.masklet-state"), frozenset({(1, 0)})
    try:
        with qtbot.waitSignal(client.session_opened, timeout=60000):
            client.load_model("random-init", "cpu")
            client.open_video(lambda: open_video(video))
        with qtbot.waitSignal(client.mask_ready, timeout=60000):
            client.set_prompts(0, 1, [(30.0, 50.0, 1)], None)
        with qtbot.waitSignal(client.state_report, timeout=60000) as saved:
            client.save_state(folder, video, 2**30, explicit=True)
        assert saved.args[0].action == "saved"

        lines = {}
        for size, action in ((None, "restored"), (96, "ignored"), (64, "restored")):
            with qtbot.waitSignal(client.model_loaded, timeout=60000) as loaded:
                client.load_model("random-init", "cpu", size)
            assert loaded.args[0].image_size == (size or 64)
            with qtbot.waitSignal(client.state_report, timeout=60000) as report:
                client.restore_state(folder, video, prompts)
            assert report.args[0].action == action, report.args[0].message
            lines[size] = report.args[0].message
        assert "the model's image size changed" in lines[96]
    finally:
        client.shutdown()
