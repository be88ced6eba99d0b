"""Hard limits on what user files may declare, checked before anything is allocated.

Every reader of user input (videos, image folders, projects, mask chunks, prompts files,
annotation files, command-line sizes) checks its declared sizes against these figures
first, so a tiny hostile file cannot make the app allocate gigabytes, run for hours, or
hang. The figures are far above any real annotation job: an 8K frame is 33 Mpx, a
hand-made prompt has tens of points, a 2 h 1080p project's JSON is a few MiB.
"""

from __future__ import annotations

MAX_FRAME_PIXELS = 8192 * 8192
"""Pixels in one video frame, image-folder frame or mask (H * W)."""

MAX_FRAME_SIDE = 32768
"""Longest side of a frame or mask, in pixels."""

MAX_FRAMES = 10_000_000
"""Frames in one video or project (about 46 h at 60 fps)."""

MAX_IMAGE_SIZE = 4096
"""Model input resolution (`--image-size`); the official checkpoints use 1024."""

MAX_POINTS_PER_PROMPT = 1024
"""Clicks in one prompt of one object on one frame."""

MAX_OBJECTS = 10_000
"""Objects in one project, prompts file or annotation file."""

MAX_JSON_BYTES = 512 * 1024 * 1024
"""A project file, an annotation file (COCO, YouTube-VIS)."""

MAX_PROMPTS_FILE_BYTES = 16 * 1024 * 1024
"""A prompts file for `masklet track`. Decoded JSON takes up to ~22x its size in Python
objects (measured: a 64 MiB file of `[0,0,1],` points peaked at 1.4 GiB before it could be
refused), so this stays well below MAX_JSON_BYTES; 16 MiB still holds a box on each of
100,000 frames."""

MAX_CHUNK_BYTES = 1024 * 1024 * 1024
"""One compressed mask chunk of a project."""

MAX_IMAGE_FILE_BYTES = 1024 * 1024 * 1024
"""One image file (a frame of an image folder, a DAVIS annotation PNG)."""

MAX_COORDINATE_MARGIN = 1.0
"""Polygon and point coordinates may lie this many frame sizes outside the frame; further
out they are refused as hostile rather than clipped (1.0: within [-W, 2W] x [-H, 2H])."""


def check_frame_size(height: int, width: int, what: str) -> None:
    """Raise ValueError (one line naming `what`) unless H x W is a sane frame size."""
    if not (isinstance(height, int) and isinstance(width, int)) or isinstance(height, bool):
        raise ValueError(f"{what}: size must be whole numbers, got {width!r}x{height!r}")
    if height <= 0 or width <= 0:
        raise ValueError(f"{what}: size {width}x{height} (WxH) is not positive")
    if max(height, width) > MAX_FRAME_SIDE:
        raise ValueError(
            f"{what}: size {width}x{height} (WxH) has a side over the limit of "
            f"{MAX_FRAME_SIDE} pixels"
        )
    if height * width > MAX_FRAME_PIXELS:
        raise ValueError(
            f"{what}: size {width}x{height} (WxH) is over the limit of "
            f"{MAX_FRAME_PIXELS // 1_000_000} megapixels per frame"
        )


MAX_POLYGON_PERIMETERS = 100
"""The polygons of one annotation may be at most this many frame perimeters, 2 (H + W), long
in all (each edge counted as its longer side plus one). Rasterising costs memory in
proportion to that length, so a zigzag of a million points across the frame is refused
rather than decoded; a real outline is a few frame perimeters at most."""


MAX_MANIFEST_BYTES = 256 * 1024 * 1024
"""A `masklet batch` manifest (JSON Lines). An entry is a few hundred bytes, so this holds
about a million videos, while its parsed lines stay well under a GiB of Python objects."""

MAX_MANIFEST_LINE_BYTES = 64 * 1024
"""One manifest line: two paths (PATH_MAX is 4096 on Linux), an id and a direction."""

MAX_MANIFEST_VIDEOS = 1_000_000
"""Videos in one batch."""
