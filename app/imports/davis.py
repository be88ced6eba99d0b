"""Import a folder of DAVIS-style indexed PNGs (0 = background, k = object k).

Accepts the folder holding the PNGs, or an export folder with an `Annotations/`
subfolder. Frames come from the trailing digits of the file names. When our export's
`objects.json` sits beside `Annotations/` (or in the folder), palette indices map
back to the original object ids, names and categories; otherwise index k becomes
object k and index 255 (DAVIS's "void" border label) is ignored.

Each PNG is read as bytes of a regular file within MAX_IMAGE_FILE_BYTES, and its
declared size is checked from the header (PIL opens lazily) before it is decoded, so
a 100 KB PNG declaring 30000x30000 pixels is refused, not inflated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from app.imports.common import (
    AnnotationImportError,
    ImportedAnnotations,
    ImportedObject,
    frame_numbers,
    load_json,
    naming,
    require_dict,
    whole_number,
)
from app.project.labels import DEFAULT_CATEGORY
from app.safety.limits import MAX_IMAGE_FILE_BYTES, check_frame_size
from app.safety.safe_io import ImageTooLarge, open_image_header, read_regular_file

__all__ = ["import_davis", "read_labels"]

VOID_INDEX = 255


def _png_folder(path: Path) -> Path:
    if not path.is_dir():
        raise AnnotationImportError(f"{path} is not a folder of PNG annotations")
    if not any(path.glob("*.png")) and (path / "Annotations").is_dir():
        return path / "Annotations"
    return path


def read_labels(
    path: Path, size: tuple[int, int] | None, against: str = "the video is"
) -> np.ndarray:
    """The (H, W) uint8 palette indices of a PNG, refused unless it is `size` (when given);
    `against` names what `size` is for the message."""
    try:
        data = read_regular_file(path, max_bytes=MAX_IMAGE_FILE_BYTES)
    except OSError as exc:
        raise AnnotationImportError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    with _open_png(data, path) as image:
        _check_header(image, path, size, against)
        try:
            return np.array(image)
        except (OSError, SyntaxError, ValueError) as exc:
            raise AnnotationImportError(f"cannot decode {path.name}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _open_png(data: bytes, path: Path) -> Image.Image:
    """PIL's lazy view of a PNG: the header is read, the pixels are not."""
    try:
        return open_image_header(data, formats=["PNG"])
    except ImageTooLarge as exc:
        raise AnnotationImportError(f"{path.name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise AnnotationImportError(f"cannot read {path.name}: {_reason(exc)}") from None


def _check_header(
    image: Image.Image, path: Path, size: tuple[int, int] | None, against: str
) -> None:
    """Refuse, before decoding, a PNG that is not indexed or not of the expected size."""
    if image.mode not in ("P", "L"):
        raise AnnotationImportError(
            f"{path.name} is a {image.mode} image, not an indexed palette PNG"
        )
    width, height = image.size
    try:
        check_frame_size(height, width, path.name)
    except ValueError as exc:
        raise AnnotationImportError(str(exc)) from None
    if size is not None and (height, width) != tuple(size):
        raise AnnotationImportError(
            f"{path.name} is {width}x{height} (WxH), {against} {size[1]}x{size[0]}"
        )


def _objects_from_file(path: Path) -> tuple[dict[int, ImportedObject] | None, list[str]]:
    """Palette index -> object from our `objects.json` (None when there is none), and the
    label list it names (`categories`, written since labels exist; else empty)."""
    for candidate in (path / "objects.json", path.parent / "objects.json"):
        if candidate.exists():
            with naming(candidate.name):
                data = load_json(candidate)
                categories = require_dict(data, "the file").get("categories", [])
                if not isinstance(categories, list) or not all(
                    isinstance(c, str) for c in categories
                ):
                    raise AnnotationImportError("'categories' must be a list of names")
                return _objects_from_data(data), categories
    return None, []


def _objects_from_data(data: object) -> dict[int, ImportedObject]:
    entries = require_dict(data, "the file").get("objects")
    if not isinstance(entries, list):
        raise AnnotationImportError("has no 'objects' list")
    objects = {}
    for i, entry in enumerate(entries):
        where = f"objects[{i}]"
        entry = require_dict(entry, where)
        name, category = entry.get("name"), entry.get("category")
        if not isinstance(name, str) or not isinstance(category, str):
            raise AnnotationImportError(f"{where} needs a 'name' and a 'category'")
        index = whole_number(
            entry.get("index"), f"{where}.index", limit=256, what="a palette index from 0 to 255"
        )
        objects[index] = ImportedObject(
            whole_number(entry.get("id"), f"{where}.id"), name, category
        )
    return objects


def _scan(files: list[Path], size: tuple[int, int] | None) -> tuple[tuple[int, int], set[int]]:
    """The (H, W) all PNGs share (the video's, when given) and the indices they use."""
    against = "the video is" if size is not None else "the other PNGs are"
    indices: set[int] = set()
    for file in files:
        labels = read_labels(file, size, against)
        size = labels.shape
        indices.update(int(v) for v in np.unique(labels))
    assert size is not None  # files is not empty
    return size, indices


def import_davis(
    path: str | Path, *, video_size: tuple[int, int] | None = None
) -> ImportedAnnotations:
    """Scan the PNGs once for their size and object indices; masks decode per frame later.

    With `video_size` (H, W) each PNG's header is checked against it before decoding."""
    path = Path(path)
    with naming(path.name):
        folder = _png_folder(path)
        files = sorted(folder.glob("*.png"))
        if not files:
            raise AnnotationImportError(f"{folder} holds no PNG files")
        frames = frame_numbers([f.name for f in files])
        by_frame = dict(zip(frames, files, strict=True))
        size, indices = _scan(files, video_size)
        known, categories = _objects_from_file(folder)
        indices.discard(0)
        if known is None:
            indices.discard(VOID_INDEX)
            known = {k: ImportedObject(k, f"object {k}", DEFAULT_CATEGORY) for k in sorted(indices)}
        unknown = sorted(indices - set(known))
        if unknown:
            raise AnnotationImportError(f"PNG indices {unknown} are not listed in objects.json")

    def loader(frame: int) -> Iterator[tuple[int, np.ndarray]]:
        with naming(path.name):
            labels = read_labels(by_frame[frame], size)
        for k in sorted(indices):
            mask = labels == k
            if mask.any():
                yield known[k].obj_id, mask

    return ImportedAnnotations(
        objects=[known[k] for k in sorted(indices)],
        video_size=size,
        frames=frames,
        loader=loader,
        categories=categories,
    )
