"""Import DAVIS PNG folders, COCO and YouTube-VIS JSON as objects with per-frame masks."""

from __future__ import annotations

from pathlib import Path

from app.imports.coco import import_coco
from app.imports.common import AnnotationImportError, ImportedAnnotations, ImportedObject
from app.imports.davis import import_davis
from app.imports.ytvis import import_ytvis

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


def detect_format(path: str | Path) -> str:
    """ "png" for a folder; "coco" or "ytvis" for JSON, told apart by a `videos` list."""
    path = Path(path)
    if path.is_dir():
        return "png"
    if not path.is_file():
        raise AnnotationImportError(f"{path} does not exist")
    if path.suffix.lower() != ".json":
        raise AnnotationImportError(f"{path.name}: expected a PNG folder or a .json file")
    head = path.read_bytes()[: 1 << 16]
    return "ytvis" if b'"videos"' in head or b'"file_names"' in head else "coco"


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
    video. Every failure is an `AnnotationImportError` with a one-line message.
    """
    fmt = fmt or detect_format(path)
    if fmt == "png":
        result = import_davis(path)
    elif fmt == "coco":
        result = import_coco(path, video=video)
    elif fmt == "ytvis":
        result = import_ytvis(path, video=video)
    else:
        raise AnnotationImportError(
            f"unknown import format {fmt!r}; choose one of {IMPORT_FORMATS}"
        )
    if video_size is not None and num_frames is not None:
        result.check_fits(video_size, num_frames)
    return result
