"""Which found instances are new: the association of the finder's masks with tracked ones.

SAM 3 pairs its detections with the tracker's masklets by mask IoU and starts a masklet for a
detection that overlaps none: we do the same with SAM 2's tracks, so that an object entering
mid-clip becomes a new object, keyed on the frame where it was found, and an object already
tracked is never duplicated. Nothing here replaces or deletes a track.

Masks are (H, W) bool arrays at the frame's size. IoUs are exact pixel counts, computed only
inside the two masks' shared bounding box: most pairs do not touch, and the others touch in a
small part of a 4K frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A detection overlapping every tracked object at most this much is new (SAM 3's association
# starts a new masklet under the same bound).
NEW_OBJECT_MAX_IOU = 0.1


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end exclusive, of a mask's set pixels; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def mask_ious(found: Sequence[np.ndarray], tracked: Sequence[np.ndarray]) -> np.ndarray:
    """(K, M) float64 IoU of each found mask with each tracked mask (0 where either is empty)."""
    out = np.zeros((len(found), len(tracked)), dtype=np.float64)
    found_boxes = [bounding_box(m) for m in found]
    tracked_boxes = [bounding_box(m) for m in tracked]
    found_areas = [int(np.count_nonzero(m)) for m in found]
    tracked_areas = [int(np.count_nonzero(m)) for m in tracked]
    for i, (a, box_a) in enumerate(zip(found, found_boxes, strict=True)):
        if box_a is None:
            continue
        for j, (b, box_b) in enumerate(zip(tracked, tracked_boxes, strict=True)):
            if box_b is None or a.shape != b.shape:
                continue
            y0, y1 = max(box_a[0], box_b[0]), min(box_a[1], box_b[1])
            x0, x1 = max(box_a[2], box_b[2]), min(box_a[3], box_b[3])
            if y0 >= y1 or x0 >= x1:
                continue
            inter = int(np.count_nonzero(a[y0:y1, x0:x1] & b[y0:y1, x0:x1]))
            union = found_areas[i] + tracked_areas[j] - inter
            out[i, j] = inter / union if union else 0.0
    return out


def new_detections(
    found: Sequence[np.ndarray],
    tracked: Sequence[np.ndarray],
    max_iou: float = NEW_OBJECT_MAX_IOU,
) -> list[int]:
    """Indices (in `found`'s order) of the non-empty found masks whose IoU with every tracked
    mask is at most `max_iou`, and with every new one kept before them as well: two
    detections of one object (at different scores) give one new object, the first."""
    kept: list[int] = []
    ious = mask_ious(found, tracked)
    for i, mask in enumerate(found):
        if not mask.any() or (ious.shape[1] and ious[i].max() > max_iou):
            continue
        if kept and mask_ious([mask], [found[k] for k in kept]).max() > max_iou:
            continue
        kept.append(i)
    return kept
