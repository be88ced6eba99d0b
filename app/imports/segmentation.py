"""COCO segmentations (RLE with string or list counts, or polygons): checked, then decoded.

pycocotools trusts what it is given. Polygon coordinates are scaled by 5 and cast to C ints
(2e9 overflows and segfaults; NaN becomes INT_MIN and asks for gigabytes), its walk along
the outline allocates in proportion to the outline's length, RLE runs that overrun the image
are written past the mask buffer, and its string parser shifts 32-bit ints by up to 60 bits.
So `validate_segmentation` checks everything pycocotools would trust, cheaply enough to run
over a whole file at import, and `decode_segmentation` hands pycocotools only what passed:
RLE as a validated list of runs, polygons clipped to the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from app.imports.common import AnnotationImportError, show
from app.safety.limits import MAX_COORDINATE_MARGIN, MAX_POLYGON_PERIMETERS

__all__ = [
    "FrameIndex",
    "clip_polygon",
    "decode_segmentation",
    "frame_loader",
    "validate_segmentation",
]

FrameIndex = dict[int, dict[int, list[tuple[Any, str]]]]
"""frame -> obj_id -> the object's validated segmentations on that frame, with where they are."""

# Polygons are clipped one pixel outside the frame, beyond the last column and row that
# pycocotools samples, so clipping changes no pixel inside the frame.
_CLIP_PAD = 1.0


def validate_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> None:
    """Raise AnnotationImportError (naming `where`) unless the RLE or polygons decode safely
    to an (H, W) mask of this `size`."""
    if isinstance(segmentation, dict):
        rle_runs(segmentation, size, where)
    elif isinstance(segmentation, list) and segmentation:
        polygons(segmentation, size, where)
    else:
        raise AnnotationImportError(f"{where}: expected RLE or polygons, not {show(segmentation)}")


def decode_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> np.ndarray:
    """Decode COCO RLE (string or list counts) or polygons into an (H, W) bool mask."""
    height, width = size
    if isinstance(segmentation, dict):
        runs = rle_runs(segmentation, size, where)
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs.tolist()}, *size)
    elif isinstance(segmentation, list) and segmentation:
        clipped = [clip_polygon(xy, size) for xy in polygons(segmentation, size, where)]
        kept = [xy.ravel().tolist() for xy in clipped if len(xy) >= 3]
        if not kept:
            return np.zeros(size, bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(kept, height, width))
    else:
        raise AnnotationImportError(f"{where}: expected RLE or polygons, not {show(segmentation)}")
    return mask_utils.decode([rle])[:, :, 0].astype(bool)


def frame_loader(
    per_frame: FrameIndex, size: tuple[int, int]
) -> Callable[[int], Iterator[tuple[int, np.ndarray]]]:
    """A loader for ImportedAnnotations: each object's mask on a frame, the union of its
    segmentations there, decoded one object at a time."""

    def load(frame: int) -> Iterator[tuple[int, np.ndarray]]:
        for obj_id, parts in per_frame[frame].items():
            (first, first_where), *rest = parts
            mask = decode_segmentation(first, size, first_where)
            for segmentation, where in rest:
                mask |= decode_segmentation(segmentation, size, where)
            yield obj_id, mask

    return load


def rle_runs(segmentation: dict, size: tuple[int, int], where: str) -> np.ndarray:
    """The run lengths of a COCO RLE, checked to tile an image of `size` exactly."""
    height, width = size
    declared = segmentation.get("size")
    if (
        not isinstance(declared, list)
        or any(type(v) is not int for v in declared)
        or declared != [height, width]
    ):
        raise AnnotationImportError(
            f"{where}: RLE size {show(declared)} does not match the image {height}x{width} (HxW)"
        )
    counts = segmentation.get("counts")
    if isinstance(counts, str):
        runs = _string_runs(counts)
        if runs is None:
            raise AnnotationImportError(f"{where}: RLE counts are not a COCO RLE string")
    elif isinstance(counts, list):
        if any(type(c) is not int for c in counts):
            raise AnnotationImportError(f"{where}: RLE counts list must hold whole numbers")
        try:
            runs = np.asarray(counts, np.int64)
        except OverflowError:
            raise AnnotationImportError(f"{where}: RLE counts are out of range") from None
    else:
        raise AnnotationImportError(f"{where}: RLE counts must be a string or a list")
    area = height * width
    # Each run within [0, area] also keeps the sum clear of int64 overflow.
    if runs.size == 0 or (runs < 0).any() or (runs > area).any() or int(runs.sum()) != area:
        raise AnnotationImportError(f"{where}: RLE counts do not cover {height}x{width} pixels")
    return runs


def _string_runs(counts: str) -> np.ndarray | None:
    """Run lengths of a compressed COCO RLE string, or None if it is not well formed.

    Each run is a little-endian base-32 number in characters '0' + 6 bits (bit 5 = more
    follows, bit 4 of the last = negative); from the third run on, runs are stored as
    deltas to the run two before. Vectorised, since files can hold many large masks.
    """
    if not counts.isascii():
        return None
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
    # Deltas are under 2**60 and every run is range-checked afterwards, so a sum cannot
    # wrap around int64 before the first out-of-range run is seen.
    runs[1::2] = np.cumsum(runs[1::2])
    runs[2::2] = np.cumsum(runs[2::2])
    return runs


def polygons(segmentation: list, size: tuple[int, int], where: str) -> list[np.ndarray]:
    """Each polygon as an (N, 2) float array of x, y, checked to be safe to rasterise."""
    height, width = size
    low = np.array([-width, -height]) * MAX_COORDINATE_MARGIN
    high = np.array([width, height]) * (1 + MAX_COORDINATE_MARGIN)
    result, length = [], 0.0
    for k, polygon in enumerate(segmentation):
        here = f"{where}[{k}]"
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            raise AnnotationImportError(f"{here}: polygons need 3 or more x, y pairs each")
        if any(type(v) not in (int, float) for v in polygon):
            raise AnnotationImportError(f"{here}: polygon coordinates must be numbers")
        xy = np.asarray(polygon, np.float64).reshape(-1, 2)
        bad = ~np.isfinite(xy) | (xy < low) | (xy > high)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise AnnotationImportError(
                f"{here}[{i}]: coordinate {show(polygon[i])} lies far outside "
                f"the {width}x{height} frame"
            )
        edges = np.abs(np.roll(xy, -1, axis=0) - xy).max(axis=1)
        length += float(edges.sum()) + len(edges)
        result.append(xy)
    if length > MAX_POLYGON_PERIMETERS * 2 * (height + width):
        raise AnnotationImportError(
            f"{where}: the polygons are {length:.0f} pixels long, over the limit of "
            f"{MAX_POLYGON_PERIMETERS} times the frame's perimeter"
        )
    return result


def clip_polygon(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (N, 2) polygon `xy` clipped to the frame, padded by `_CLIP_PAD` (Sutherland-Hodgman).

    Fewer than 3 points come back when the polygon lies outside the frame."""
    height, width = size
    low, high = -_CLIP_PAD, np.array([width, height]) + _CLIP_PAD
    if ((xy >= low) & (xy <= high)).all():
        return xy
    for axis in (0, 1):
        xy = _clip_half_plane(xy, axis, low, keep_above=True)
        xy = _clip_half_plane(xy, axis, float(high[axis]), keep_above=False)
    return xy


def _clip_half_plane(xy: np.ndarray, axis: int, bound: float, *, keep_above: bool) -> np.ndarray:
    """One Sutherland-Hodgman step, vectorised over the edges (p_i, p_i+1).

    An edge entering the half-plane emits its crossing and its end, one staying inside its
    end, one leaving its crossing only, one staying outside nothing."""
    if len(xy) == 0:
        return xy
    ends = np.roll(xy, -1, axis=0)
    a, b = xy[:, axis], ends[:, axis]
    start_in, end_in = (a >= bound, b >= bound) if keep_above else (a <= bound, b <= bound)
    crosses = start_in != end_in
    t = np.zeros_like(a)
    t[crosses] = (bound - a[crosses]) / (b[crosses] - a[crosses])
    crossing = xy + t[:, None] * (ends - xy)
    crossing[:, axis] = bound
    emitted = np.stack([crossing, ends], axis=1)  # (N, 2 points, 2 coordinates)
    return emitted[np.stack([crosses, end_in], axis=1)]
