"""Import a folder of DAVIS-style indexed PNGs (0 = background, k = object k).

Accepts the folder holding the PNGs, or an export folder with an `Annotations/`
subfolder. Frames come from the trailing digits of the file names. When our export's
`objects.json` sits beside `Annotations/` (or in the folder), palette indices map
back to the original object ids, names and categories; otherwise index k becomes
object k and index 255 (DAVIS's "void" border label) is ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    frame_numbers,
    load_json,
)

__all__ = ["import_davis"]

VOID_INDEX = 255


def _png_folder(path: Path) -> Path:
    if not path.is_dir():
        raise AnnotationImportError(f"{path} is not a folder of PNG annotations")
    if not any(path.glob("*.png")) and (path / "Annotations").is_dir():
        return path / "Annotations"
    return path


def _read_labels(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise AnnotationImportError(
                    f"{path.name} is a {image.mode} image, not an indexed palette PNG"
                )
            return np.array(image)
    except (OSError, SyntaxError) as exc:
        raise AnnotationImportError(f"cannot read {path.name}: {exc}") from None


def _objects_from_file(path: Path) -> dict[int, ImportedObject] | None:
    """Palette index -> object from our `objects.json`, or None when there is none."""
    for candidate in (path / "objects.json", path.parent / "objects.json"):
        if candidate.is_file():
            data = load_json(candidate)
            try:
                return {
                    int(e["index"]): ImportedObject(
                        int(e["id"]), str(e["name"]), str(e["category"])
                    )
                    for e in data["objects"]
                }
            except (KeyError, TypeError, ValueError):
                raise AnnotationImportError(f"{candidate} is malformed") from None
    return None


def import_davis(path: str | Path) -> ImportedAnnotations:
    """Scan the PNGs once for their size and object indices; masks decode per frame later."""
    folder = _png_folder(Path(path))
    files = sorted(folder.glob("*.png"))
    if not files:
        raise AnnotationImportError(f"{folder} holds no PNG files")
    frames = frame_numbers([f.name for f in files])
    by_frame = dict(zip(frames, files, strict=True))
    size = None
    indices: set[int] = set()
    for file in files:
        labels = _read_labels(file)
        if size is None:
            size = labels.shape
        elif labels.shape != size:
            raise AnnotationImportError(
                f"{file.name} is {labels.shape[1]}x{labels.shape[0]} (WxH), "
                f"the other PNGs are {size[1]}x{size[0]}"
            )
        indices.update(int(v) for v in np.unique(labels))
    known = _objects_from_file(folder)
    indices.discard(0)
    if known is None:
        indices.discard(VOID_INDEX)
        known = {k: ImportedObject(k, f"object {k}", "object") for k in sorted(indices)}
    unknown = sorted(indices - set(known))
    if unknown:
        raise AnnotationImportError(f"PNG indices {unknown} are not listed in objects.json")
    objects = [known[k] for k in sorted(indices)]

    def loader(frame: int) -> dict[int, np.ndarray]:
        labels = _read_labels(by_frame[frame])
        masks = {known[k].obj_id: labels == k for k in sorted(indices)}
        return {obj_id: mask for obj_id, mask in masks.items() if mask.any()}

    return ImportedAnnotations(objects=objects, video_size=size, frames=frames, loader=loader)
