"""Import COCO instance-segmentation JSON: images are frames, track ids are objects.

The frame of an image is its `frame_index` (our export) or `frame_id`, else the
trailing number of its file name, else its position in the file. The object of an
annotation is its `track_id` / `instance_id` (or `attributes.track_id`), else the
annotation's own id, so a plain per-image COCO file gives one object per annotation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    whole_number,
)
from app.imports.segmentation import FrameIndex, frame_loader, validate_segmentation
from app.project.labels import DEFAULT_CATEGORY

__all__ = ["coco_from_data", "import_coco", "imported_object", "track_of"]

# Where an annotation's object id may be, in the order tried.
_TRACK_KEYS = ("track_id", "instance_id", "attributes.track_id", "id")


def _require_list(data: Any, key: str) -> list:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise AnnotationImportError(f"COCO file has no '{key}' list")
    return value


def _video_of(image: dict) -> str:
    return str(image.get("video", image.get("video_id", "")))


def _select_images(images: list, video: str | None) -> list[tuple[str, dict]]:
    """(where, image) of the images of one video: `video`, or the only one there is."""
    entries = [(f"images[{i}]", require_dict(img, f"images[{i}]")) for i, img in enumerate(images)]
    if not entries:
        raise AnnotationImportError("COCO file lists no images")
    if video is not None:
        entries = [(where, img) for where, img in entries if _video_of(img) == video]
        if not entries:
            raise AnnotationImportError(f"COCO file has no images of video {video!r}")
        return entries
    videos = sorted({_video_of(img) for _, img in entries})
    if len(videos) > 1:
        listed = ", ".join(show(v, 24) for v in videos[:5])
        raise AnnotationImportError(
            f"COCO file has {len(videos)} videos ({listed}{', …' if len(videos) > 5 else ''}); "
            "choose one"
        )
    return entries


def _image_frames(images: list, video: str | None) -> tuple[dict[int, int], tuple[int, int]]:
    """image id -> frame index, and the (H, W) every selected image shares."""
    entries = _select_images(images, video)
    if all("frame_index" in img or "frame_id" in img for _, img in entries):
        frames = []
        for where, img in entries:
            key = "frame_index" if "frame_index" in img else "frame_id"
            frames.append(frame_number(img[key], f"{where}.{key}"))
    else:
        frames = frame_numbers([str(img.get("file_name", "")) for _, img in entries])
    sizes = {frame_size(img, where) for where, img in entries}
    ids = [whole_number(img.get("id"), f"{where}.id") for where, img in entries]
    if len(sizes) != 1:
        raise AnnotationImportError(f"COCO images have different sizes {sorted(sizes)[:4]}")
    if len(set(ids)) != len(ids):
        raise AnnotationImportError("two COCO images share an id")
    unique_frames(frames, "COCO images")
    return dict(zip(ids, frames, strict=True)), sizes.pop()


def track_of(annotation: dict, where: str) -> int:
    """The object id of an annotation (see the module docstring for the order tried)."""
    attributes = annotation.get("attributes")
    for key in _TRACK_KEYS:
        if key == "attributes.track_id":
            value = attributes.get("track_id") if isinstance(attributes, dict) else None
        else:
            value = annotation.get(key)
        if value is not None:
            return whole_number(value, f"{where}.{key}")
    raise AnnotationImportError(f"{where} has neither a track id nor an id")


def imported_object(annotation: dict, obj_id: int, categories: dict, where: str) -> ImportedObject:
    """The object an annotation belongs to: its name (given, or "<category> <id>") and category."""
    category_id = annotation.get("category_id")
    if category_id is None:
        category = DEFAULT_CATEGORY
    elif type(category_id) in (int, str):
        category = categories.get(category_id, DEFAULT_CATEGORY)
    else:
        raise AnnotationImportError(
            f"{where}.category_id must be a number, not {show(category_id)}"
        )
    name = annotation.get("name")
    if not isinstance(name, str):
        name = f"{category} {obj_id}"
    return ImportedObject(obj_id, name, category)


def _index_annotations(
    annotations: list, frame_of: dict[int, int], size: tuple[int, int], categories: dict
) -> tuple[FrameIndex, dict[int, ImportedObject]]:
    """Check every annotation of the kept images; group their segmentations by frame and object."""
    per_frame: FrameIndex = {frame: {} for frame in frame_of.values()}
    objects: dict[int, ImportedObject] = {}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise AnnotationImportError(f"{where}: missing 'segmentation'")
        frame = frame_of.get(whole_number(ann.get("image_id"), f"{where}.image_id"))
        if frame is None:
            continue  # an image of another video, or of none we kept
        validate_segmentation(ann["segmentation"], size, f"{where}.segmentation")
        obj_id = track_of(ann, where)
        objects.setdefault(obj_id, imported_object(ann, obj_id, categories, where))
        per_frame[frame].setdefault(obj_id, []).append(
            (ann["segmentation"], f"{where}.segmentation")
        )
    return per_frame, objects


def coco_from_data(data: Any, *, video: str | None = None) -> ImportedAnnotations:
    """Index parsed COCO JSON by frame; masks are decoded from the kept RLE/polygons per frame."""
    frame_of, size = _image_frames(_require_list(data, "images"), video)
    categories = category_names(_require_list(data, "categories"), "categories")
    annotations = _require_list(data, "annotations")
    per_frame, objects = _index_annotations(annotations, frame_of, size, categories)

    return ImportedAnnotations(
        objects=sorted(objects.values(), key=lambda o: o.obj_id),
        video_size=size,
        frames=list(frame_of.values()),
        loader=frame_loader(per_frame, size),
        categories=list(categories.values()),
    )


def import_coco(path: str | Path, *, video: str | None = None) -> ImportedAnnotations:
    """Import a COCO file (see the module docstring); errors name the file."""
    path = Path(path)
    with naming(path.name):
        return coco_from_data(load_json(path), video=video)
