"""A second `masklet batch` on the same `--out` refuses in one line (issue 28, item 3).

The lock is checked before Ray starts, so no cluster is needed here."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace

import pytest
from video_fixtures import write_video

from app.headless.cli import main
from app.project.lock import BATCH_LOCK_NAME, Holder, process_start, read_holder

pytest.importorskip("ray")


def test_second_batch_on_one_out_refuses_in_one_line(tmp_path, capsys, monkeypatch):
    video = write_video(tmp_path / "clip.mp4", frames=3, width=64, height=48)
    prompts = tmp_path / "clip.json"
    points = [[12, 24, 1]]
    prompts.write_text(
        json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 0, "points": points}]}]})
    )
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video": str(video), "prompts": str(prompts)}) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        holder = replace(Holder.this_process(), pid=other.pid, started=process_start(other.pid))
        (out / BATCH_LOCK_NAME).write_text(json.dumps(asdict(holder)))
        monkeypatch.setattr(
            "app.headless.batch.scheduler.run_batch",
            lambda *_a, **_k: pytest.fail("a locked --out must not start a batch"),
        )
        args = ["--checkpoint", "random:sam2.1-tiny", "--image-size", "64", "--out", str(out)]
        code = main(["batch", str(manifest), *args])
        err = capsys.readouterr().err.strip()
        assert code == 1
        assert "\n" not in err and "in use by another masklet batch" in err
        assert f"process {other.pid}" in err
        assert read_holder(out / BATCH_LOCK_NAME).pid == other.pid  # left to its holder
    finally:
        other.kill()
        other.wait()
