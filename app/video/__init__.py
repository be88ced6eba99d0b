"""Frame-accurate reading of video files and image folders.

with open_video("clip.mp4") as video:
    frame = video[120]  # (H, W, 3) uint8 RGB, upright
"""

from __future__ import annotations

import os
from pathlib import Path

from app.video.cache import DEFAULT_CACHE_BYTES, FrameCache
from app.video.errors import VideoError
from app.video.file_reader import VideoFileReader
from app.video.images import DEFAULT_FOLDER_FPS, IMAGE_SUFFIXES, ImageFolderReader
from app.video.reader import VideoReader

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "FrameCache",
    "ImageFolderReader",
    "VideoError",
    "VideoFileReader",
    "VideoReader",
    "open_video",
]


def open_video(
    path: str | os.PathLike[str],
    *,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    folder_fps: float = DEFAULT_FOLDER_FPS,
) -> VideoReader:
    """A reader for a video file, or for a folder of JPEG/PNG images shown at `folder_fps`.

    Raises VideoError, with a one-line message for the user, when `path` cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        return ImageFolderReader(path, fps=folder_fps, cache_bytes=cache_bytes)
    return VideoFileReader(path, cache_bytes=cache_bytes)
