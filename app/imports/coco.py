"""Import COCO instance-segmentation JSON: images are frames, track ids are objects.

The frame of an image is its `frame_index` (our export) or `frame_id`, else the
trailing number of its file name, else its position in the file. The object of an
annotation is its `track_id` / `instance_id` (or `attributes.track_id`), else the
annotation's own id, so a plain per-image COCO file gives one object per annotation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    decode_segmentation,
    frame_numbers,
    load_json,
    validate_segmentation,
)

__all__ = ["import_coco", "track_of"]


def _require_list(data: Any, key: str) -> list:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise AnnotationImportError(f"COCO file has no '{key}' list")
    return value


def _image_frames(images: list, video: str | None) -> tuple[dict[int, int], tuple[int, int]]:
    """image id -> frame index, and the (H, W) every selected image shares."""
    videos = sorted({str(img.get("video", img.get("video_id", ""))) for img in images})
    if video is None and len(videos) > 1:
        raise AnnotationImportError(f"COCO file has {len(videos)} videos {videos}; choose one")
    if video is not None:
        images = [img for img in images if str(img.get("video", img.get("video_id"))) == video]
        if not images:
            raise AnnotationImportError(f"COCO file has no images of video {video!r}")
    try:
        if all("frame_index" in img or "frame_id" in img for img in images):
            frames = [int(img.get("frame_index", img.get("frame_id"))) for img in images]
        else:
            frames = frame_numbers([str(img.get("file_name", "")) for img in images])
        sizes = {(int(img["height"]), int(img["width"])) for img in images}
        ids = [int(img["id"]) for img in images]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationImportError(f"COCO image entry lacks a valid {exc}") from None
    if len(sizes) != 1:
        raise AnnotationImportError(f"COCO images have different sizes {sorted(sizes)}")
    if len(set(frames)) != len(frames):
        raise AnnotationImportError("two COCO images map to the same frame")
    return dict(zip(ids, frames, strict=True)), sizes.pop()


def track_of(annotation: dict) -> int:
    """The object id of an annotation (see the module docstring for the order tried)."""
    attributes = annotation.get("attributes")
    for value in (
        annotation.get("track_id"),
        annotation.get("instance_id"),
        attributes.get("track_id") if isinstance(attributes, dict) else None,
        annotation.get("id"),
    ):
        if value is not None:
            return int(value)
    raise AnnotationImportError("COCO annotation has neither a track id nor an id")


def import_coco(path: str | Path, *, video: str | None = None) -> ImportedAnnotations:
    """Index the file by frame; masks are decoded from the kept RLE/polygons per frame."""
    data = load_json(Path(path))
    frame_of, size = _image_frames(_require_list(data, "images"), video)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in _require_list(data, "categories")}
    except (KeyError, TypeError, ValueError):
        raise AnnotationImportError("COCO categories need an 'id' and a 'name'") from None
    per_frame: dict[int, list[tuple[int, Any, str]]] = {frame: [] for frame in frame_of.values()}
    objects: dict[int, ImportedObject] = {}
    for i, ann in enumerate(_require_list(data, "annotations")):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise AnnotationImportError(f"{where}: missing 'segmentation'")
        frame = frame_of.get(ann.get("image_id"))
        if frame is None:
            continue  # an image of another video, or of none we kept
        validate_segmentation(ann["segmentation"], size, where)
        obj_id = track_of(ann)
        category = categories.get(ann.get("category_id"), "object")
        name = str(ann.get("name", f"{category} {obj_id}"))
        objects.setdefault(obj_id, ImportedObject(obj_id, name, category))
        per_frame[frame].append((obj_id, ann["segmentation"], where))

    def loader(frame: int) -> dict[int, np.ndarray]:
        masks: dict[int, np.ndarray] = {}
        for obj_id, segmentation, where in per_frame[frame]:
            mask = decode_segmentation(segmentation, size, where)
            masks[obj_id] = masks[obj_id] | mask if obj_id in masks else mask
        return masks

    return ImportedAnnotations(
        objects=sorted(objects.values(), key=lambda o: o.obj_id),
        video_size=size,
        frames=list(frame_of.values()),
        loader=loader,
    )
