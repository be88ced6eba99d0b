"""Hostile video files: refused with one VideoError line before anything big is allocated."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
from hostile import PLAIN_CAP, assert_refused, run_python

from app.video import VideoError, open_video


def _ffv1(path, width: int, height: int, frames: int = 1) -> None:
    """A lossless grey clip: compresses a blank frame of any size to a few hundred bytes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for i in range(frames):
            blank = av.VideoFrame.from_ndarray(np.zeros((height, width), np.uint8), format="gray")
            blank.pts = i
            container.mux(stream.encode(blank))
        container.mux(stream.encode())


def test_frame_side_over_the_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "thin.mkv"
    _ffv1(path, 40000, 16)
    assert path.stat().st_size < 10_000
    with pytest.raises(VideoError, match="side over the limit of 32768 pixels") as info:
        open_video(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_frame_at_the_limit_still_opens(tmp_path):
    path = tmp_path / "wide.mkv"
    _ffv1(path, 4096, 16, frames=2)
    with open_video(path) as reader:
        assert len(reader) == 2 and reader[1].shape == (16, 4096, 3)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder-named-mp4"])
def test_non_regular_video_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "clip.mp4"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    code = (
        "import sys\n"
        "from app.video import VideoError, open_video\n"
        f"try:\n    open_video({str(path)!r})\n"
        "except VideoError as e:\n    sys.exit(f'error: {e}')\n"
    )
    line = assert_refused(run_python(code, mem_bytes=PLAIN_CAP, timeout=60))
    assert str(path) in line
