"""Import YouTube-VIS JSON: one video's per-object lists of per-frame segmentations.

The frames of the video's `file_names` come from `frame_indices` (our export), else
from the names' trailing numbers, else their positions. A file with several videos
needs `video=` (a video name or id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.imports.coco import imported_object, track_of
from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    category_names,
    frame_number,
    frame_numbers,
    frame_size,
    load_json,
    naming,
    require_dict,
    show,
    unique_frames,
)
from app.imports.segmentation import FrameIndex, frame_loader, validate_segmentation

__all__ = ["import_ytvis", "ytvis_from_data"]


def _pick_video(data: Any, video: str | None) -> tuple[str, dict]:
    """(where, entry) of the video to import: `video` (a name or id), or the only one."""
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, list) or not videos:
        raise AnnotationImportError("YouTube-VIS file has no 'videos' list")
    entries = [(f"videos[{i}]", require_dict(v, f"videos[{i}]")) for i, v in enumerate(videos)]
    if video is None:
        if len(entries) > 1:
            names = ", ".join(show(v.get("name", v.get("id")), 24) for _, v in entries[:5])
            raise AnnotationImportError(
                f"YouTube-VIS file has {len(entries)} videos "
                f"({names}{', …' if len(entries) > 5 else ''}); choose one"
            )
        return entries[0]
    for where, entry in entries:
        if video in (str(entry.get("name")), str(entry.get("id"))):
            return where, entry
    raise AnnotationImportError(f"YouTube-VIS file has no video {video!r}")


def _video_frames(entry: dict, where: str) -> tuple[list[int], tuple[int, int]]:
    """The frame of each of the video's file names, and its (H, W)."""
    size = frame_size(entry, where)
    names = entry.get("file_names")
    if not isinstance(names, list) or not names:
        raise AnnotationImportError(f"{where}.file_names must be a list of file names")
    if "frame_indices" not in entry:
        return frame_numbers([str(n) for n in names]), size
    indices = entry["frame_indices"]
    if not isinstance(indices, list) or len(indices) != len(names):
        raise AnnotationImportError(
            f"{where}.frame_indices must list one frame per file name ({len(names)})"
        )
    frames = [frame_number(f, f"{where}.frame_indices[{i}]") for i, f in enumerate(indices)]
    return unique_frames(frames, f"{where}.frame_indices"), size


def _index_annotations(
    data: dict, video_id: Any, frames: list[int], size: tuple[int, int], categories: dict
) -> tuple[FrameIndex, dict[int, ImportedObject]]:
    """Check every annotation of the video; group their segmentations by frame."""
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise AnnotationImportError("YouTube-VIS file has no 'annotations' list")
    per_frame: FrameIndex = {frame: {} for frame in frames}
    objects: dict[int, ImportedObject] = {}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or ann.get("video_id") != video_id:
            continue
        segmentations = ann.get("segmentations")
        if not isinstance(segmentations, list) or len(segmentations) != len(frames):
            raise AnnotationImportError(
                f"{where}.segmentations: expected a list of {len(frames)} entries"
            )
        obj_id = track_of(ann, where)
        objects.setdefault(obj_id, imported_object(ann, obj_id, categories, where))
        for j, (frame, segmentation) in enumerate(zip(frames, segmentations, strict=True)):
            if segmentation is not None:
                here = f"{where}.segmentations[{j}]"
                validate_segmentation(segmentation, size, here)
                per_frame[frame].setdefault(obj_id, []).append((segmentation, here))
    return per_frame, objects


def ytvis_from_data(data: Any, *, video: str | None = None) -> ImportedAnnotations:
    """Index one video of parsed YouTube-VIS JSON by frame; masks decode per frame on demand."""
    where, entry = _pick_video(data, video)
    frames, size = _video_frames(entry, where)
    categories = category_names(data.get("categories", []), "categories")
    per_frame, objects = _index_annotations(data, entry.get("id"), frames, size, categories)

    return ImportedAnnotations(
        objects=sorted(objects.values(), key=lambda o: o.obj_id),
        video_size=size,
        frames=frames,
        loader=frame_loader(per_frame, size),
        categories=list(categories.values()),
    )


def import_ytvis(path: str | Path, *, video: str | None = None) -> ImportedAnnotations:
    """Import one video of a YouTube-VIS file (see the module docstring); errors name the file."""
    path = Path(path)
    with naming(path.name):
        return ytvis_from_data(load_json(path), video=video)
