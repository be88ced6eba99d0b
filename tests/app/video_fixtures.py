"""Small videos and image folders for the video reader tests, written with PyAV and OpenCV.

Every frame carries its own number as a row of black/white blocks along its top edge, so a
test can tell which source frame a decoded frame is, through lossy coding and rotation.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

N = 36  # frames per generated clip
W, H = 160, 120
OPEN_GOP = {"bf": "3", "g": "12", "x264-params": "open_gop=1"}  # B-frames, 12-frame open GOPs
CODE_BITS = 6  # frame numbers up to 63
CODE_BLOCK = 16  # px per bit; frames must be at least CODE_BITS * CODE_BLOCK wide


def pattern_frame(i: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: fixed texture, a square moving with i, and i coded on top."""
    rng = np.random.default_rng(1234)
    texture = rng.integers(40, 200, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    frame = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)[:height, :width].copy()
    x = (5 * i) % max(1, width - 24)
    frame[height // 2 - 12 : height // 2 + 12, x : x + 24] = (250, 30, 30)
    for bit in range(CODE_BITS):
        frame[:CODE_BLOCK, bit * CODE_BLOCK : (bit + 1) * CODE_BLOCK] = 255 * ((i >> bit) & 1)
    return frame


def frame_code(frame: np.ndarray) -> int:
    """The frame number coded by `pattern_frame` into the top edge of `frame`."""
    code = 0
    for bit in range(CODE_BITS):
        block = frame[2 : CODE_BLOCK - 2, bit * CODE_BLOCK + 2 : (bit + 1) * CODE_BLOCK - 2]
        code |= int(block.mean() > 128) << bit
    return code


def write_video(
    path: Path,
    *,
    codec: str = "libx264",
    frames: int = N,
    width: int = W,
    height: int = H,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pts_ms: list[int] | None = None,
    rotation: int | None = None,
) -> Path:
    """Encode `frames` pattern frames at 30 fps, or at the millisecond times `pts_ms`.

    `rotation` writes a display matrix asking players to turn the picture that many degrees
    counter-clockwise, so the frames are stored turned the other way: shown upright they are
    exactly `pattern_frame(i, width, height)`.
    """
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        turns = (rotation or 0) // 90
        stored_h, stored_w = (width, height) if turns % 2 else (height, width)
        stream.width, stream.height, stream.pix_fmt = stored_w, stored_h, pix_fmt
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            stored = np.ascontiguousarray(np.rot90(pattern_frame(i, width, height), -turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux(src: Path, dst: Path, fmt: str) -> Path:
    """Copy the video packets of `src` into container format `fmt` without re-encoding."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format=fmt) as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.size:
                packet.stream = out
                target.mux(packet)
    return dst


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    """A copy of the first `fraction` of the bytes of `src`: a download cut short."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def write_image_folder(folder: Path, suffix: str, frames: int, width: int, height: int) -> Path:
    """frame1.png ... frameN.png (unpadded: natural order differs from text order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        bgr = cv2.cvtColor(pattern_frame(i, width, height), cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(folder / f"frame{i + 1}{suffix}"), bgr)
    (folder / "notes.txt").write_text("not an image")
    return folder


def plain_decode(path: Path) -> list[np.ndarray]:
    """Every frame of `path` from one plain PyAV decode loop, turned upright.

    A packet that fails to decode is skipped, as a player would, so that a file cut short
    still yields the frames before the cut.
    """
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for frame in decoded:
                rgb = frame.to_ndarray(format="rgb24")
                turns = round(frame.rotation / 90) % 4
                frames.append(np.ascontiguousarray(np.rot90(rgb, turns)))
    return frames
