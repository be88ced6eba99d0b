"""Import YouTube-VIS JSON: one video's per-object lists of per-frame segmentations.

The frames of the video's `file_names` come from `frame_indices` (our export), else
from the names' trailing numbers, else their positions. A file with several videos
needs `video=` (a video name or id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.imports.coco import track_of
from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    decode_segmentation,
    frame_numbers,
    load_json,
    validate_segmentation,
)

__all__ = ["import_ytvis"]


def _pick_video(data: Any, video: str | None) -> dict:
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, list) or not videos:
        raise AnnotationImportError("YouTube-VIS file has no 'videos' list")
    if video is None:
        if len(videos) > 1:
            names = [v.get("name", v.get("id")) for v in videos[:5]]
            raise AnnotationImportError(
                f"YouTube-VIS file has {len(videos)} videos {names}...; choose one"
            )
        return videos[0]
    for entry in videos:
        if video in (str(entry.get("name")), str(entry.get("id"))):
            return entry
    raise AnnotationImportError(f"YouTube-VIS file has no video {video!r}")


def _video_frames(entry: dict) -> tuple[list[int], tuple[int, int]]:
    try:
        size = (int(entry["height"]), int(entry["width"]))
        names = entry["file_names"]
        frames = [int(f) for f in entry["frame_indices"]] if "frame_indices" in entry else None
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationImportError(f"YouTube-VIS video entry lacks a valid {exc}") from None
    if not isinstance(names, list) or not names:
        raise AnnotationImportError("YouTube-VIS video has no file_names")
    frames = frames if frames is not None else frame_numbers([str(n) for n in names])
    if len(frames) != len(names) or len(set(frames)) != len(frames):
        raise AnnotationImportError("YouTube-VIS frame_indices do not match file_names")
    return frames, size


def import_ytvis(path: str | Path, *, video: str | None = None) -> ImportedAnnotations:
    """Index one video's annotations by frame; masks decode per frame on demand."""
    data = load_json(Path(path))
    entry = _pick_video(data, video)
    frames, size = _video_frames(entry)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
    except (KeyError, TypeError, ValueError):
        raise AnnotationImportError("YouTube-VIS categories need an 'id' and a 'name'") from None
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise AnnotationImportError("YouTube-VIS file has no 'annotations' list")
    per_frame: dict[int, list[tuple[int, Any, str]]] = {frame: [] for frame in frames}
    objects: dict[int, ImportedObject] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict) or ann.get("video_id") != entry.get("id"):
            continue
        segmentations = ann.get("segmentations")
        if not isinstance(segmentations, list) or len(segmentations) != len(frames):
            raise AnnotationImportError(
                f"annotations[{i}].segmentations: expected a list of {len(frames)} entries"
            )
        obj_id = track_of(ann)
        category = categories.get(ann.get("category_id"), "object")
        objects.setdefault(
            obj_id, ImportedObject(obj_id, str(ann.get("name", f"{category} {obj_id}")), category)
        )
        for j, (frame, segmentation) in enumerate(zip(frames, segmentations, strict=True)):
            if segmentation is not None:
                where = f"annotations[{i}].segmentations[{j}]"
                validate_segmentation(segmentation, size, where)
                per_frame[frame].append((obj_id, segmentation, where))

    def loader(frame: int) -> dict[int, np.ndarray]:
        return {
            obj_id: decode_segmentation(segmentation, size, where)
            for obj_id, segmentation, where in per_frame[frame]
        }

    objects_sorted = sorted(objects.values(), key=lambda o: o.obj_id)
    return ImportedAnnotations(
        objects=objects_sorted, video_size=size, frames=frames, loader=loader
    )
