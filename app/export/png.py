"""DAVIS-style indexed PNG export.

Layout under the output folder:
    Annotations/00000.png      one palette ("P" mode) PNG per frame, 0 = background,
                               object k of the export = index k (same on every frame)
    Objects/<obj_id>/00000.png optional black/white PNG per object and frame
    JPEGImages/00000.jpg       optional source frames
    objects.json               index -> object id, name and category, for re-import

Overlap rule: where masks overlap, the object listed later in the export wins, the
same order in which the overlay video paints them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from app.atomic import atomic_write_text
from app.export.files import frame_stem, save_image, save_png_bytes
from app.export.palette import davis_palette
from app.export.source import ExportOptions, ExportSource, FrameLoop, ObjectMeta

__all__ = ["index_map", "label_image", "write_png"]

ANNOTATIONS_DIR = "Annotations"
OBJECTS_DIR = "Objects"
IMAGES_DIR = "JPEGImages"
OBJECTS_FILE = "objects.json"


def index_map(objects: Sequence[ObjectMeta]) -> dict[int, int]:
    """Stable palette index (1..K) for each object id, in export order."""
    if len(objects) > 255:
        raise ValueError(f"a palette PNG holds at most 255 objects, the export has {len(objects)}")
    return {obj.obj_id: k for k, obj in enumerate(objects, start=1)}


def label_image(
    masks: dict[int, np.ndarray], indices: dict[int, int], size: tuple[int, int]
) -> np.ndarray:
    """Paint masks into an (H, W) uint8 label map; later objects in `indices` win overlaps."""
    labels = np.zeros(size, dtype=np.uint8)
    for obj_id, index in indices.items():
        mask = masks.get(obj_id)
        if mask is None:
            continue
        if mask.shape != size:
            raise ValueError(f"mask of object {obj_id} is {mask.shape}, expected {size}")
        labels[mask] = index
    return labels


def _palette_png(labels: np.ndarray) -> Image.Image:
    image = Image.fromarray(labels)
    image.putpalette(davis_palette().tobytes())
    return image


def _write_objects_file(out: Path, objects: Sequence[ObjectMeta], indices: dict[int, int]) -> None:
    entries = [
        {"index": indices[obj.obj_id], "id": obj.obj_id, "name": obj.name, "category": obj.category}
        for obj in objects
    ]
    atomic_write_text(out / OBJECTS_FILE, json.dumps({"objects": entries}, indent=2) + "\n")


def write_png(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    """Write the PNG layout above into the folder `out`; returns the files written."""
    indices = index_map(objects)
    (out / ANNOTATIONS_DIR).mkdir(parents=True, exist_ok=True)
    _write_objects_file(out, objects, indices)
    written = [out / OBJECTS_FILE]
    for frame in frames:
        loop.check()
        masks = source.masks(frame)
        stem = frame_stem(frame)
        path = out / ANNOTATIONS_DIR / f"{stem}.png"
        save_png_bytes(path, _palette_png(label_image(masks, indices, source.video_size)))
        written.append(path)
        if options.binary_masks:
            for obj in objects:
                mask = masks.get(obj.obj_id)
                binary = np.zeros(source.video_size, np.uint8) if mask is None else mask * 255
                path = out / OBJECTS_DIR / str(obj.obj_id) / f"{stem}.png"
                save_png_bytes(path, Image.fromarray(binary.astype(np.uint8)))
                written.append(path)
        if options.images is not None:
            path = out / IMAGES_DIR / f"{stem}.{options.images}"
            save_image(path, source.image(frame), quality=options.jpeg_quality)
            written.append(path)
        loop.step()
    return written
