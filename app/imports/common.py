"""Types and helpers shared by the annotation importers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    "AnnotationImportError",
    "ImportedAnnotations",
    "ImportedObject",
    "decode_segmentation",
    "frame_numbers",
    "load_json",
    "validate_segmentation",
]


class AnnotationImportError(ValueError):
    """An annotation file is malformed or does not fit the video; the message is one line."""


@dataclass(frozen=True)
class ImportedObject:
    obj_id: int
    name: str
    category: str


MaskLoader = Callable[[int], dict[int, np.ndarray]]


class ImportedAnnotations:
    """Objects and their masks on the frames an annotation file covers.

    Masks are decoded lazily, one frame per `masks(frame)` call, so importing a long
    video never holds all of them; `frames` lists the covered frame indices in order.
    """

    def __init__(
        self,
        *,
        objects: Sequence[ImportedObject],
        video_size: tuple[int, int],
        frames: Sequence[int],
        loader: MaskLoader,
    ) -> None:
        self.objects = list(objects)
        self.video_size = video_size  # (H, W)
        self.frames = sorted(frames)
        self._loader = loader
        self._covered = set(self.frames)

    def masks(self, frame: int) -> dict[int, np.ndarray]:
        """{obj_id: (H, W) bool} of the objects present on `frame` (empty if not covered)."""
        if frame not in self._covered:
            return {}
        return self._loader(frame)

    def __iter__(self) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for frame in self.frames:
            yield frame, self._loader(frame)

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


def load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise AnnotationImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(f"{path} is not valid JSON: {exc}") from None


def validate_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> None:
    """Check the structure of COCO RLE or polygons without decoding; cheap enough to run
    on a whole file up front, so a malformed entry fails the import, not a later frame."""
    height, width = size
    if isinstance(segmentation, dict):
        declared = segmentation.get("size")
        if not isinstance(declared, list) or declared != [height, width]:
            raise AnnotationImportError(
                f"{where}: RLE size {declared} does not match the image {height}x{width} (HxW)"
            )
        counts = segmentation.get("counts")
        if not isinstance(counts, (str, list)):
            raise AnnotationImportError(f"{where}: RLE counts must be a string or a list")
        if isinstance(counts, list) and not all(isinstance(c, int) for c in counts):
            raise AnnotationImportError(f"{where}: RLE counts list must hold integers")
        if _short(segmentation):
            raise AnnotationImportError(f"{where}: RLE counts do not cover {height}x{width} pixels")
    elif isinstance(segmentation, list) and segmentation:
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise AnnotationImportError(f"{where}: polygons need 3 or more x, y pairs each")
            if not all(isinstance(v, (int, float)) for v in polygon):
                raise AnnotationImportError(f"{where}: polygon coordinates must be numbers")
    else:
        raise AnnotationImportError(f"{where}: expected RLE or polygons")


def decode_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> np.ndarray:
    """Decode COCO RLE (string or list counts) or polygons into an (H, W) bool mask."""
    validate_segmentation(segmentation, size, where)
    height, width = size
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        try:
            rle = {"size": [height, width], "counts": segmentation["counts"].encode("ascii")}
        except UnicodeEncodeError:
            raise AnnotationImportError(f"{where}: RLE counts are not ASCII") from None
    try:
        mask = mask_utils.decode([rle])[:, :, 0]
    except (ValueError, TypeError) as exc:
        raise AnnotationImportError(f"{where}: cannot decode segmentation ({exc})") from None
    return mask.astype(bool)


def _short(segmentation: dict) -> bool:
    """True when the RLE runs do not add up to the image area.

    pycocotools decodes such counts without complaint (padding, or writing past the
    buffer for long ones), so they are checked here before trusting the result.
    """
    counts = segmentation["counts"]
    height, width = (int(v) for v in segmentation["size"])
    try:
        runs = np.asarray(counts, np.int64) if isinstance(counts, list) else _string_runs(counts)
    except (UnicodeEncodeError, OverflowError):
        return True
    return runs is None or bool((runs < 0).any()) or int(runs.sum()) != height * width


def _string_runs(counts: str) -> np.ndarray | None:
    """Run lengths of a compressed COCO RLE string, or None if it is not well formed.

    Each run is a little-endian base-32 number in characters '0' + 6 bits (bit 5 = more
    follows, bit 4 of the last = negative); from the third run on, runs are stored as
    deltas to the run two before. Vectorised, since files can hold many large masks.
    """
    data = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if data.size == 0:
        return np.zeros(0, np.int64)
    if data.min() < 0 or data.max() > 63 or data[-1] & 0x20:
        return None
    last = (data & 0x20) == 0
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.concatenate(([0], np.cumsum(last)[:-1]))
    digit = np.arange(data.size) - starts[group]
    if digit.max() > 11:  # more than 60 bits cannot be a run length
        return None
    runs = np.add.reduceat((data & 0x1F) << (5 * digit), starts)
    negative = (data[ends] & 0x10) != 0
    runs = runs - np.where(negative, np.left_shift(1, 5 * (digit[ends] + 1)), 0)
    runs[1::2] = np.cumsum(runs[1::2])
    runs[2::2] = np.cumsum(runs[2::2])
    return runs


_TRAILING_DIGITS = re.compile(r"(\d+)$")


def frame_numbers(names: Sequence[str]) -> list[int]:
    """Frame index per file name from its trailing digits (`clip/00042.jpg` -> 42).

    Falls back to list positions when any name has no number or two names share one.
    """
    numbers = []
    for name in names:
        match = _TRAILING_DIGITS.search(Path(str(name)).stem)
        if match is None:
            return list(range(len(names)))
        numbers.append(int(match.group(1)))
    return numbers if len(set(numbers)) == len(numbers) else list(range(len(names)))
