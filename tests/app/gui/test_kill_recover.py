"""A real app process killed with SIGKILL mid-propagation; a new window recovers its work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_window

from app.gui.document.annotations import MaskState

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_propagation_then_recover(qtbot, tmp_path, video_path, settings):
    recovery = tmp_path / "recovery"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
    }
    script = Path(__file__).parent / "fake_engine.py"
    args = [str(video_path), str(recovery), str(tmp_path / "child.ini")]
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        frames = []
        for line in proc.stdout:
            if line.startswith("frame "):
                frames.append(int(line.split()[1]))
            if len(frames) >= 10:
                break
        assert len(frames) >= 10, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # Frames the child reported between our last read and the kill.
        frames += [int(x.split()[1]) for x in proc.stdout.read().splitlines() if "frame" in x]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    window = make_window(qtbot, settings, recovery)
    try:
        offered = []
        window.ask_recovery = lambda info: offered.append(info) or "recover"
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            assert window.offer_recovery()
        assert len(offered) == 1 and offered[0].num_prompts == 1
        doc = window.document
        (obj,) = [o.obj_id for o in doc.objects()]
        assert doc.keyframes(obj) == [0]
        ((x, y, label),) = doc.prompts(0, obj).points
        assert (x, y, label) == (40.0, 50.0, 1)
        # Masks up to the last autosave (every 0.5 s, propagation at ~7 frames/s):
        # some propagated frames beyond the prompted one, none beyond what was computed.
        saved = set(map(int, (doc.state_track(obj) == MaskState.MASK).nonzero()[0]))
        assert {0, 1, 2} <= saved
        assert saved <= set(range(max(frames) + 1))
        assert doc.mask(1, obj)[50, 42]
    finally:
        window.close()
