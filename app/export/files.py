"""File helpers shared by the exporters: atomic outputs and frame/image naming."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from app.atomic import atomic_write_bytes, fsync_dir

__all__ = [
    "atomic_output",
    "frame_file_name",
    "frame_stem",
    "save_image",
    "save_png_bytes",
    "write_frame_image",
]


def frame_stem(frame: int) -> str:
    """File stem for a frame: the video frame index, zero padded (DAVIS style, `00042`)."""
    return f"{frame:05d}"


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds.

    For writers that need a real file to stream into (JSON, MP4); small in-memory
    payloads go through `app.atomic.atomic_write_bytes` instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def save_png_bytes(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def save_image(path: Path, rgb: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB frame as JPEG or PNG, chosen by the suffix."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if path.suffix.lower() == ".png":
        save_png_bytes(path, image)
        return
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


IMAGES_DIR = "JPEGImages"


def frame_file_name(video_name: str, frame: int, ext: str) -> str:
    """Relative name of a frame image (`<video>/00042.jpg`), as COCO and YouTube-VIS list it."""
    return f"{video_name}/{frame_stem(frame)}.{ext}"


def write_frame_image(root: Path, rel_name: str, rgb: np.ndarray, *, quality: int) -> Path:
    """Write a source frame under `root/JPEGImages/<rel_name>`; returns the path."""
    path = root / IMAGES_DIR / rel_name
    save_image(path, rgb, quality=quality)
    return path
