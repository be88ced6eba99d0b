"""DAVIS-style indexed PNG export.

Layout under the output folder:
    Annotations/00000.png      one palette ("P" mode) PNG per frame, 0 = background,
                               object k of the export = index k (same on every frame)
    Objects/<obj_id>/00000.png optional black/white PNG per object and frame
    JPEGImages/00000.jpg       optional source frames
    objects.json               index -> object id, name and category, for re-import (and
                               `finder_score` for an object SAM 3's finder found)

Overlap rule: where masks overlap, the object listed later in the export wins, the
same order in which the overlay video paints them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from app.export.files import atomic_folder, frame_stem, save_image, save_png_bytes
from app.export.palette import davis_palette
from app.export.source import (
    ExportOptions,
    ExportSource,
    FrameLoop,
    ObjectMeta,
    finder_score_entry,
    source_labels,
)
from app.project.labels import category_list, category_name
from app.safety.atomic import atomic_write_text
from app.safety.limits import MAX_JSON_BYTES
from app.safety.safe_io import parse_json, read_regular_file

__all__ = ["index_map", "is_earlier_export", "label_image", "write_png"]

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


def _write_objects_file(
    out: Path, objects: Sequence[ObjectMeta], indices: dict[int, int], labels: Sequence[str]
) -> None:
    """Index -> object, with the categories as COCO and YouTube-VIS exports name them, and
    the label list (`categories`, in order) they come from."""
    entries = [
        {
            "index": indices[obj.obj_id],
            "id": obj.obj_id,
            "name": obj.name,
            "category": category_name(obj.category),
            **finder_score_entry(obj),
        }
        for obj in objects
    ]
    categories = category_list(labels, (obj.category for obj in objects))
    text = json.dumps({"objects": entries, "categories": categories}, indent=2)
    atomic_write_text(out / OBJECTS_FILE, text + "\n")


def write_png(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    """Write the PNG layout above as the folder `out`; returns the files written.

    The folder is built under a temporary sibling name and renamed to `out` at the end, so
    `out` never holds a partial export, not even after a kill or a cancel. An existing `out`
    is replaced only if it is empty or an earlier export of this layout (ValueError else).
    """
    indices = index_map(objects)
    with atomic_folder(out, is_earlier_export) as tmp:
        written = _write_layout(source, tmp, frames, objects, indices, options, loop)
    return [out / path.relative_to(tmp) for path in written]


def _write_layout(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    indices: dict[int, int],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    (out / ANNOTATIONS_DIR).mkdir(parents=True, exist_ok=True)
    _write_objects_file(out, objects, indices, source_labels(source))
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


_FRAME_PNG = re.compile(r"^\d{5,}\.png$")
_FRAME_IMAGE = re.compile(r"^\d{5,}\.(?:jpg|png)$")
_OBJECT_ID = re.compile(r"^\d+$")


def is_earlier_export(folder: Path) -> bool:
    """Whether `folder` holds nothing Masklet's PNG export would not have written: empty,
    or our `objects.json` plus frame files under our sub-folders, and no links anywhere."""
    entries = {e.name: e for e in os.scandir(folder)}
    if not entries:
        return True
    if OBJECTS_FILE not in entries or not set(entries) <= {
        OBJECTS_FILE, ANNOTATIONS_DIR, OBJECTS_DIR, IMAGES_DIR
    }:  # fmt: skip
        return False
    if not _is_objects_file(Path(entries[OBJECTS_FILE].path)):
        return False
    frame_folders = ((ANNOTATIONS_DIR, _FRAME_PNG), (IMAGES_DIR, _FRAME_IMAGE))
    subfolders = [(folder / name, pattern) for name, pattern in frame_folders if name in entries]
    if OBJECTS_DIR in entries:
        if not _only(folder / OBJECTS_DIR, dirs=True, pattern=_OBJECT_ID):
            return False
        subfolders += [(Path(e.path), _FRAME_PNG) for e in os.scandir(folder / OBJECTS_DIR)]
    return all(_only(sub, dirs=False, pattern=pattern) for sub, pattern in subfolders)


def _only(folder: Path, *, dirs: bool, pattern: re.Pattern[str]) -> bool:
    """`folder` is a real folder whose entries are all real folders (or all regular files)
    named by `pattern`."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    for entry in os.scandir(folder):
        kind_ok = (
            entry.is_dir(follow_symlinks=False) if dirs else entry.is_file(follow_symlinks=False)
        )
        if not kind_ok or not pattern.match(entry.name):
            return False
    return True


def _is_objects_file(path: Path) -> bool:
    try:
        doc = parse_json(read_regular_file(path, max_bytes=MAX_JSON_BYTES))
    except (OSError, ValueError):
        return False
    entries = doc.get("objects") if isinstance(doc, dict) else None
    return isinstance(entries, list) and all(
        isinstance(e, dict) and {"index", "id"} <= e.keys() for e in entries
    )
