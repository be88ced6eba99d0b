"""Types and checks shared by the annotation importers.

Importers read user files, so every field they use is checked for its type and range
before it is used (a list where an id belongs, a negative or fractional frame, a size
of 1e300) and every failure is an `AnnotationImportError` whose one-line message names
the file and the place in it, e.g. ``labels.json: annotations[3].track_id must be ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.project.labels import with_names
from app.safety.limits import MAX_FRAMES, MAX_JSON_BYTES, MAX_OBJECTS, check_frame_size
from app.safety.safe_io import JsonError, parse_json, read_regular_file

__all__ = [
    "AnnotationImportError",
    "ImportedAnnotations",
    "ImportedObject",
    "category_names",
    "frame_number",
    "frame_numbers",
    "frame_size",
    "load_json",
    "naming",
    "require_dict",
    "show",
    "unique_frames",
    "whole_number",
]

ID_LIMIT = 2**63  # ids travel as int64 (project files, numpy arrays)


class AnnotationImportError(ValueError):
    """An annotation file is malformed or does not fit the video; the message is one line."""


@dataclass(frozen=True)
class ImportedObject:
    obj_id: int
    name: str
    category: str


MaskLoader = Callable[[int], Iterator[tuple[int, np.ndarray]]]


class ImportedAnnotations:
    """Objects and their masks on the frames an annotation file covers.

    Masks are decoded lazily, one object on one frame at a time (`iter_masks`), so
    importing a long video with many objects never holds more than one decoded mask;
    `frames` lists the covered frame indices in order.
    """

    def __init__(
        self,
        *,
        objects: Sequence[ImportedObject],
        video_size: tuple[int, int],
        frames: Sequence[int],
        loader: MaskLoader,
        categories: Sequence[str] = (),
    ) -> None:
        if len(objects) > MAX_OBJECTS:
            raise AnnotationImportError(
                f"holds {len(objects)} objects, over the limit of {MAX_OBJECTS}"
            )
        self.objects = list(objects)
        # The file's category list in its order (unused ones too), then any other
        # category its objects name: what an import adds to the project's labels.
        self.categories = [
            label.name for label in with_names((), [*categories, *(o.category for o in objects)])
        ]
        self.video_size = video_size  # (H, W)
        self.frames = sorted(frames)
        self._loader = loader
        self._covered = set(self.frames)

    def iter_masks(self, frame: int) -> Iterator[tuple[int, np.ndarray]]:
        """(obj_id, (H, W) bool mask) of each object present on `frame`, decoded one by one."""
        if frame in self._covered:
            yield from self._loader(frame)

    def masks(self, frame: int) -> dict[int, np.ndarray]:
        """{obj_id: (H, W) bool} of the objects present on `frame` (empty if not covered)."""
        return dict(self.iter_masks(frame))

    def __iter__(self) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for frame in self.frames:
            yield frame, self.masks(frame)

    def check_fits(self, video_size: tuple[int, int], num_frames: int) -> None:
        """Raise AnnotationImportError unless the annotations fit a video of this size/length."""
        if tuple(video_size) != tuple(self.video_size):
            (ah, aw), (vh, vw) = self.video_size, video_size
            raise AnnotationImportError(
                f"annotations are {aw}x{ah} (WxH) but the video is {vw}x{vh}"
            )
        if self.frames and self.frames[-1] >= num_frames:
            raise AnnotationImportError(
                f"annotations reach frame {self.frames[-1]} but the video has {num_frames} frames"
            )


@contextmanager
def naming(name: str) -> Iterator[None]:
    """Prefix `name` (a file's) to the AnnotationImportErrors raised inside."""
    try:
        yield
    except AnnotationImportError as exc:
        raise AnnotationImportError(f"{name}: {exc}") from None


def load_json(path: Path) -> Any:
    """The parsed JSON of a regular file of at most MAX_JSON_BYTES (see app.safety.safe_io)."""
    try:
        return parse_json(read_regular_file(path, max_bytes=MAX_JSON_BYTES))
    except OSError as exc:
        raise AnnotationImportError(f"cannot read the file: {exc.strerror or exc}") from None
    except JsonError as exc:
        raise AnnotationImportError(f"is not valid JSON: {exc}") from None


def show(value: Any, limit: int = 40) -> str:
    """`value` for an error message: one short line, whatever the file held."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def require_dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise AnnotationImportError(f"{where} must be a JSON object, not {show(value)}")
    return value


def whole_number(
    value: Any, where: str, *, limit: int = ID_LIMIT, what: str = "a non-negative whole number"
) -> int:
    """`value` if it is a plain int in [0, limit); bools, floats, text and the like are refused."""
    if type(value) is not int or not 0 <= value < limit:
        raise AnnotationImportError(f"{where} must be {what}, not {show(value)}")
    return value


def frame_number(value: Any, where: str) -> int:
    """`value` if it is a whole number of a frame, below MAX_FRAMES."""
    return whole_number(
        value, where, limit=MAX_FRAMES, what=f"a frame number from 0 to {MAX_FRAMES - 1}"
    )


def unique_frames(frames: list[int], what: str) -> list[int]:
    """`frames`, unless two of them are the same frame."""
    if len(set(frames)) != len(frames):
        raise AnnotationImportError(f"two {what} map to the same frame")
    return frames


def frame_size(entry: dict, where: str) -> tuple[int, int]:
    """The (H, W) an image or video entry declares, within the frame-size limits."""
    height = whole_number(entry.get("height"), f"{where}.height")
    width = whole_number(entry.get("width"), f"{where}.width")
    try:
        check_frame_size(height, width, where)
    except ValueError as exc:
        raise AnnotationImportError(str(exc)) from None
    return height, width


def category_names(categories: Any, where: str) -> dict[int | str, str]:
    """{category id: name} of a COCO-style `categories` list."""
    if not isinstance(categories, list):
        raise AnnotationImportError(f"{where} must be a list")
    names: dict[int | str, str] = {}
    for i, category in enumerate(categories):
        if (
            not isinstance(category, dict)
            or type(category.get("id")) not in (int, str)
            or not isinstance(category.get("name"), str)
        ):
            raise AnnotationImportError(f"{where}[{i}]: categories need an 'id' and a 'name'")
        names[category["id"]] = category["name"]
    return names


_TRAILING_DIGITS = re.compile(r"(\d+)$")


def frame_numbers(names: Sequence[str]) -> list[int]:
    """Frame index per file name from its trailing digits (`clip/00042.jpg` -> 42).

    Falls back to list positions when any name has no number, two names share one, or one
    is too large to be a frame (a timestamp, say).
    """
    numbers = []
    for name in names:
        match = _TRAILING_DIGITS.search(Path(str(name)).stem)
        # Eight digits reach MAX_FRAMES; longer runs are not frame numbers (and int()
        # refuses runs of thousands of digits).
        if match is None or len(match.group(1).lstrip("0")) > len(str(MAX_FRAMES)):
            return list(range(len(names)))
        numbers.append(int(match.group(1)))
    if len(set(numbers)) != len(numbers) or max(numbers, default=0) >= MAX_FRAMES:
        return list(range(len(names)))
    return numbers
