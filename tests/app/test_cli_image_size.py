"""`--image-size` keeps its meaning on the command line while the app gains Model > Input Size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from video_fixtures import write_video

import app.headless.cli
from app.headless.cli import main
from app.project.state_identity import checkpoint_identity

PROMPTS = {"objects": [{"id": 1, "prompts": [{"frame": 0, "points": [[30, 30, 1]]}]}]}


@pytest.fixture
def args(tmp_path: Path) -> list[str]:
    video = write_video(tmp_path / "clip.mp4", frames=2, width=96, height=64)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(PROMPTS))
    out = str(tmp_path / "out.json")
    return ["track", str(video), "--prompts", str(prompts), "--checkpoint", "random:sam2.1-tiny",
            "--format", "coco", "--out", out]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), [(["--image-size", "512"], 512), ([], None)])
def test_image_size_reaches_the_model_loader(monkeypatch, capsys, args, extra, expected):
    """The CLI passes `--image-size` to the loader as given, and nothing without it (the
    checkpoint's own size), as before the GUI's input size menu."""
    seen: list[int | None] = []

    def record(checkpoint, image_size, device):
        seen.append(image_size)
        raise ValueError("stop here")

    monkeypatch.setattr(app.headless.cli, "_load_model", record)
    assert main([*args, *extra]) == 1
    assert seen == [expected]
    assert "stop here" in capsys.readouterr().err


def test_checkpoint_identity_includes_the_input_size(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x" * 4096)
    at = {size: checkpoint_identity(str(weights), "sam2.1-tiny", size) for size in (1024, 512)}
    assert at[1024] != at[512] and ":512:" in at[512]
    assert checkpoint_identity(str(weights), "sam2.1-tiny", 512) == at[512]
