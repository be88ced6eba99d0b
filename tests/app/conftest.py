"""Fixtures of the video reader tests (tests/app/test_video*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_fixtures import OPEN_GOP, write_video


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def gop12_mp4(video_dir: Path) -> Path:
    """36 frames of H.264 with B-frames in 12-frame open GOPs."""
    return write_video(video_dir / "gop12.mp4", options=OPEN_GOP)
