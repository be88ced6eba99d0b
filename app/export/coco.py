"""COCO instance-segmentation JSON export, streamed.

One image entry per exported frame and one annotation per present object per frame,
with exact compressed RLE (or lossy polygons when asked), box, area, category, the
object's `track_id` and a `score` (the predicted IoU; see `frame_scores`), and for an object
SAM 3's finder found, the score it was found with (`finder_score`, the same on each of the
object's annotations). The file is
written as a stream: the small parts (info, categories, images) first, then each frame's
annotations as soon as that frame's masks are encoded, so memory holds one frame's masks
at a time, never the video's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from app.export.files import atomic_output, frame_file_name, write_frame_image
from app.export.rle import encode_mask, mask_to_polygons
from app.export.source import (
    ExportOptions,
    ExportSource,
    FrameLoop,
    ObjectMeta,
    finder_score_entry,
    frame_scores,
    source_labels,
)
from app.project.labels import category_list, category_name

__all__ = ["category_table", "write_coco"]


def category_table(
    objects: Sequence[ObjectMeta], labels: Sequence[str] = ()
) -> tuple[list[dict], dict[int, int]]:
    """COCO categories (ids 1..C: the project's `labels` in order, unused ones included, then
    any other category the objects use) and each object's category id."""
    names = category_list(labels, (obj.category for obj in objects))
    ids = {name: cid for cid, name in enumerate(names, start=1)}
    categories = [{"id": ids[name], "name": name, "supercategory": name} for name in names]
    return categories, {obj.obj_id: ids[category_name(obj.category)] for obj in objects}


def _image_entries(source: ExportSource, frames: range, ext: str) -> list[dict]:
    height, width = source.video_size
    return [
        {
            "id": image_id,
            "file_name": frame_file_name(source.name, frame, ext),
            "width": width,
            "height": height,
            "frame_index": frame,
            "video": source.name,
        }
        for image_id, frame in enumerate(frames, start=1)
    ]


def _write_header(stream: TextIO, source: ExportSource, images: list[dict], categories) -> None:
    info = {
        "description": f"Masklet export of {source.name}",
        "video": source.name,
        "fps": source.fps,
        "num_frames": source.num_frames,
    }
    stream.write('{"info": ' + json.dumps(info))
    stream.write(',\n"categories": ' + json.dumps(categories))
    stream.write(',\n"images": [')
    stream.write(",".join("\n" + json.dumps(entry) for entry in images))
    stream.write('],\n"annotations": [')


def write_coco(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    """Write a COCO JSON file at `out` (frame images under `out.parent` if asked)."""
    categories, category_of = category_table(objects, source_labels(source))
    ext = options.images or "jpg"
    images = _image_entries(source, frames, ext)
    written = []
    next_id = 1
    with atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8") as stream:
        _write_header(stream, source, images, categories)
        for entry, frame in zip(images, frames, strict=True):
            loop.check()
            masks = source.masks(frame)
            scores = frame_scores(source, frame, masks)
            for obj in objects:
                mask = masks.get(obj.obj_id)
                if mask is None or not mask.any():
                    continue
                encoded = encode_mask(mask)
                annotation = {
                    "id": next_id,
                    "image_id": entry["id"],
                    "category_id": category_of[obj.obj_id],
                    "segmentation": mask_to_polygons(mask) if options.polygons else encoded.rle,
                    "area": encoded.area,
                    "bbox": encoded.bbox,
                    "iscrowd": 0,
                    "track_id": obj.obj_id,
                    "name": obj.name,
                    "score": scores[obj.obj_id],
                    **finder_score_entry(obj),
                }
                stream.write(("" if next_id == 1 else ",") + "\n" + json.dumps(annotation))
                next_id += 1
            if options.images is not None:
                rgb, name = source.image(frame), entry["file_name"]
                quality = options.jpeg_quality
                written.append(write_frame_image(out.parent, name, rgb, quality=quality))
            loop.step()
        stream.write("]}\n")
    return [out, *written]
