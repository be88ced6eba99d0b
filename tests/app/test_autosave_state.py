"""A crashed session's engine state survives recovery: it moves into the new session."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from app.project.autosave import Autosaver

REPO = Path(__file__).resolve().parents[2]

CRASHING_CHILD = """
    import os
    from app.project.autosave import Autosaver
    from app.project.mask_store import MaskStore
    from app.project.files import Project
    project = Project("/videos/crash.mp4", [], [], {}, 20, (12, 16))
    saver = Autosaver(mask_interval_s=0)
    saver.attach(lambda: (project, MaskStore((12, 16), num_frames=20)))
    saver.flush()
    saver.state_dir.mkdir()
    (saver.state_dir / "index.json").write_text("state of the crashed session")
    os._exit(3)
"""


def test_recovered_engine_state_moves_into_the_new_session(tmp_path) -> None:
    env = {**os.environ, "MASKLET_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    child = [sys.executable, "-c", textwrap.dedent(CRASHING_CHILD)]
    assert subprocess.run(child, cwd=REPO, env=env, timeout=60, check=False).returncode == 3
    saver = Autosaver(root=tmp_path / "recovery")
    assert saver.take_recovered_state() is None
    (info,) = saver.find_recoverable()
    saver.recover(info)
    moved = saver.take_recovered_state()
    assert moved == saver.state_dir and moved.parent == saver.session_dir
    assert saver.take_recovered_state() is None  # handed out once
    saver.discard(info)
    assert not info.path.exists()
    assert (moved / "index.json").read_text() == "state of the crashed session"
    saver.clean_shutdown()
    assert not moved.exists()


def test_recovery_without_engine_state_has_none(tmp_path) -> None:
    env = {**os.environ, "MASKLET_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    code = CRASHING_CHILD.replace("saver.state_dir.mkdir()", "os._exit(3)")
    child = [sys.executable, "-c", textwrap.dedent(code)]
    assert subprocess.run(child, cwd=REPO, env=env, timeout=60, check=False).returncode == 3
    saver = Autosaver(root=tmp_path / "recovery")
    (info,) = saver.find_recoverable()
    saver.recover(info)
    assert saver.take_recovered_state() is None
    saver.discard(info)
    saver.clean_shutdown()
