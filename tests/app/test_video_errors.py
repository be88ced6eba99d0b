"""Bad input: every failure is a VideoError with one clear line, never a hang or a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from video_fixtures import (
    H,
    W,
    frame_code,
    pattern_frame,
    truncate,
    write_image_folder,
    write_video,
)

from app.video import VideoError, open_video


def _text(path: Path) -> Path:
    path.write_text("hello, this is not a video\n" * 20)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), "s16", "mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _no_frames(path: Path) -> Path:
    source = write_video(path.with_suffix(".full.mkv"), frames=3)
    with av.open(str(source)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
    path.write_bytes(source.read_bytes()[: first.pos])  # headers only
    return path


def _unknown_codec(path: Path) -> Path:
    source = write_video(path.with_suffix(".src.avi"), codec="mjpeg", pix_fmt="yuvj420p")
    path.write_bytes(source.read_bytes().replace(b"MJPG", b"QQQQ"))
    return path


def _cut_mp4(path: Path) -> Path:
    # Without faststart the index (moov) is at the end: cut it off and nothing is readable.
    return truncate(write_video(path.with_suffix(".full.mp4")), path, 0.5)


def _empty_folder(path: Path) -> Path:
    path.mkdir()
    (path / "readme.txt").write_text("no images here")
    return path


def _broken_image(path: Path) -> Path:
    path.mkdir()
    (path / "0.png").write_bytes(b"\x89PNG broken")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file: "),
        (lambda d: _text(d / "notes.txt"), "not a video file: "),
        (lambda d: _text(d / "fake.mp4"), "not a video file, or a damaged one: "),
        (lambda d: _audio_only(d / "sound.wav"), "no video stream in "),
        (lambda d: _no_frames(d / "empty.mkv"), "no video frames in "),
        (lambda d: _unknown_codec(d / "odd.avi"), "unsupported video codec in "),
        (lambda d: _cut_mp4(d / "cut.mp4"), "not a video file, or a damaged one: "),
        (lambda d: _empty_folder(d / "nothing"), "no JPEG or PNG images in folder "),
        (lambda d: _broken_image(d / "broken"), "cannot decode image "),
    ],
    ids=[
        "missing",
        "text",
        "text-as-mp4",
        "audio-only",
        "zero-frames",
        "unknown-codec",
        "cut-mp4",
        "empty-folder",
        "broken-image",
    ],
)
def test_bad_input_raises_one_line_video_error(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(VideoError) as caught:
        open_video(path)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text
    assert path.name in text
    assert isinstance(caught.value, ValueError)


def test_folder_image_of_another_size_fails_when_read(video_dir: Path) -> None:
    folder = write_image_folder(video_dir / "mixed", ".png", 3, W, H)
    odd = pattern_frame(2, W // 2, H)
    assert cv2.imwrite(str(folder / "frame3.png"), odd)
    with open_video(folder) as reader:
        assert frame_code(reader[1]) == 1
        with pytest.raises(VideoError, match=r"frame3.png is 80x120, unlike the first image"):
            reader[2]
