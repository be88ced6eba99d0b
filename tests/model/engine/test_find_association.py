"""The association of found masks with tracked ones: exact IoUs, new objects only."""

from __future__ import annotations

import numpy as np

from model.engine.find_association import bounding_box, mask_ious, new_detections


def box_mask(y0: int, y1: int, x0: int, x1: int, shape=(60, 80)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_ious_are_exact_pixel_counts():
    a, b = box_mask(0, 10, 0, 10), box_mask(5, 15, 5, 15)  # 25 shared of 175
    far, empty = box_mask(40, 50, 60, 70), np.zeros((60, 80), bool)
    ious = mask_ious([a, far, empty], [b, a])
    np.testing.assert_allclose(ious, [[25 / 175, 1.0], [0.0, 0.0], [0.0, 0.0]])
    assert bounding_box(a) == (0, 10, 0, 10) and bounding_box(empty) is None


def test_ious_agree_with_brute_force_on_random_shapes():
    rng = np.random.default_rng(0)
    found = [rng.random((30, 40)) > t for t in (0.3, 0.6, 0.9)]
    tracked = [rng.random((30, 40)) > t for t in (0.5, 0.95)]
    brute = [[(f & t).sum() / (f | t).sum() for t in tracked] for f in found]
    np.testing.assert_allclose(mask_ious(found, tracked), brute)


def test_a_tracked_object_is_never_found_again_and_a_new_one_is():
    tracked = [box_mask(0, 20, 0, 20)]
    again = box_mask(1, 21, 0, 20)  # the same object, a pixel lower: IoU 0.9
    entering = box_mask(30, 50, 50, 75)
    touching = box_mask(15, 35, 15, 35)  # IoU 25/775 with the tracked one: new
    assert new_detections([again, entering, touching], tracked) == [1, 2]
    assert new_detections([again], []) == [0]


def test_duplicates_among_detections_give_one_new_object_and_empty_masks_none():
    first, duplicate = box_mask(30, 50, 50, 75), box_mask(31, 50, 50, 75)
    empty = np.zeros((60, 80), bool)
    assert new_detections([empty, first, duplicate], []) == [1]
