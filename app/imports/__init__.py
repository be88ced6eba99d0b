"""Import DAVIS PNG folders, COCO and YouTube-VIS JSON as objects with per-frame masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.imports.coco import coco_from_data, import_coco
from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    load_json,
    naming,
)
from app.imports.davis import import_davis
from app.imports.ytvis import import_ytvis, ytvis_from_data

__all__ = [
    "IMPORT_FORMATS",
    "AnnotationImportError",
    "ImportedAnnotations",
    "ImportedObject",
    "detect_format",
    "import_annotations",
    "import_coco",
    "import_davis",
    "import_ytvis",
]

IMPORT_FORMATS = ("png", "coco", "ytvis")


def _json_format(data: Any) -> str:
    """ "ytvis" for JSON with a `videos` list and no `images` list, else "coco"."""
    videos = data.get("videos") if isinstance(data, dict) else None
    return "ytvis" if isinstance(videos, list) and "images" not in data else "coco"


def _read_json(path: Path) -> Any:
    """The parsed JSON of `path`; AnnotationImportError naming it when it is not a JSON file."""
    if not path.exists():
        raise AnnotationImportError(f"{path} does not exist")
    if path.suffix.lower() != ".json":
        raise AnnotationImportError(f"{path.name}: expected a PNG folder or a .json file")
    with naming(path.name):
        return load_json(path)


def detect_format(path: str | Path) -> str:
    """ "png" for a folder; "coco" or "ytvis" for JSON, told apart by a `videos` list.

    The file is read and parsed whole (through app.safety.safe_io), so a FIFO, a huge file or
    hostile JSON is refused here too."""
    path = Path(path)
    return "png" if path.is_dir() else _json_format(_read_json(path))


def import_annotations(
    path: str | Path,
    *,
    fmt: str | None = None,
    video: str | None = None,
    video_size: tuple[int, int] | None = None,
    num_frames: int | None = None,
) -> ImportedAnnotations:
    """Import annotations, detecting the format unless `fmt` is given.

    With `video_size` (H, W) and `num_frames`, also checks that the annotations fit the
    video (a DAVIS PNG's size before decoding it). Every failure is an
    `AnnotationImportError` with a one-line message naming the file.
    """
    path = Path(path)
    if fmt not in (None, *IMPORT_FORMATS):
        raise AnnotationImportError(
            f"unknown import format {fmt!r}; choose one of {IMPORT_FORMATS}"
        )
    if fmt == "png" or (fmt is None and path.is_dir()):
        result = import_davis(path, video_size=video_size)
    else:
        data = _read_json(path)
        with naming(path.name):
            if (fmt or _json_format(data)) == "coco":
                result = coco_from_data(data, video=video)
            else:
                result = ytvis_from_data(data, video=video)
    if video_size is not None and num_frames is not None:
        with naming(path.name):
            result.check_fits(video_size, num_frames)
    return result
