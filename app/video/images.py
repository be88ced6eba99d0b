"""Frames from a folder of JPEG or PNG images, in natural name order."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from app.video.cache import DEFAULT_CACHE_BYTES
from app.video.errors import VideoError
from app.video.reader import VideoReader

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
DEFAULT_FOLDER_FPS = 30.0

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """Sort key that orders numbers by value: "frame2" before "frame10"."""
    parts = _DIGITS.split(name)
    # Text and digit runs alternate, so equal positions always compare like with like.
    runs = tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))
    return runs, name


def list_images(folder: Path) -> list[Path]:
    """The JPEG and PNG files directly in `folder`, naturally sorted."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def load_image(path: Path) -> np.ndarray:
    """An image file as a C-contiguous (H, W, 3) uint8 RGB array, EXIF orientation applied.

    16-bit images are scaled to 8 bits, grey ones expanded and alpha dropped.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths
    except OSError as e:
        raise VideoError(f"cannot read image {path}: {e.strerror or e}") from e
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise VideoError(f"cannot decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageFolderReader(VideoReader):
    """The images of a folder as frames, one every 1/`fps` seconds (see `VideoReader`).

    All images must have the size of the first; one that does not raises VideoError when read.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        fps: float = DEFAULT_FOLDER_FPS,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        folder = Path(folder)
        super().__init__(path=folder, cache_bytes=cache_bytes)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not folder.is_dir():
            raise VideoError(f"no such folder: {folder}")
        self._files = list_images(folder)
        if not self._files:
            raise VideoError(f"no JPEG or PNG images in folder {folder}")
        first = load_image(self._files[0])
        n = len(self._files)
        self._set_frames(timestamps=np.arange(n) / fps, fps=fps, size=first.shape[:2])
        self._cache.put(0, first, first.nbytes)

    @property
    def files(self) -> list[Path]:
        """The image of each frame, in frame order."""
        return list(self._files)

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path = self._files[index]
        rgb = load_image(path)
        if rgb.shape[:2] != self.size:
            h, w = rgb.shape[:2]
            fh, fw = self.size
            raise VideoError(f"image {path} is {w}x{h}, unlike the first image ({fw}x{fh})")
        return rgb, rgb.nbytes

    def _to_rgb(self, item: object) -> np.ndarray:
        assert isinstance(item, np.ndarray)
        return item.copy()

    def _close(self) -> None:
        self._files = []
