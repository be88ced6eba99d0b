"""Plain parts of finding: rejected proposals are not proposed again on the same frame for the
same phrase; names continue "PHRASE N"; a phrase is cleaned of control characters."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.find.review import RejectedProposals, Review, crop_iou
from app.gui.worker.finding import crop_mask
from app.gui.worker.jobs import FindResult
from app.project.found import check_finder_score, clean_phrase, numbered_names


def rect(x0, y0, x1, y1, size=(50, 60)):
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return crop_mask(mask)


def result(frame, phrase, masks, scores):
    boxes = np.zeros((len(masks), 4), np.float32)
    return FindResult(1, frame, phrase, None, None, np.array(scores, np.float32), boxes, masks)


def test_a_rejected_proposal_is_not_proposed_again_on_that_frame_for_that_phrase():
    rejected = RejectedProposals()
    a, b = rect(0, 0, 10, 10), rect(30, 20, 50, 40)
    rejected.reject(3, "Red  car", a)
    nearly_a = rect(1, 0, 10, 10)  # IoU 0.9 with a
    assert crop_iou(a, nearly_a) == pytest.approx(0.9)
    assert rejected.is_rejected(3, "red car", nearly_a)
    assert not rejected.is_rejected(3, "red car", b)
    assert not rejected.is_rejected(4, "red car", a)  # another frame
    assert not rejected.is_rejected(3, "car", a)  # another phrase
    review = Review(result(3, "red car", [nearly_a, b], [0.9, 0.6]), rejected)
    assert [p.rank for p in review.pending] == [1]
    assert [p.rank for p in review.shown(0.7)] == [] and len(review.shown(0.5)) == 1


def test_crop_iou_counts_only_where_crops_meet():
    assert crop_iou(rect(0, 0, 10, 10), rect(20, 20, 30, 30)) == 0.0
    assert crop_iou(rect(0, 0, 10, 10), rect(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_names_continue_after_existing_ones():
    existing = ["bicycle 1", "bicycle 7", "bicycle x", "big bicycle 9", "car 3"]
    assert numbered_names(existing, "bicycle", 2) == ["bicycle 8", "bicycle 9"]
    assert numbered_names([], "a.b", 1) == ["a.b 1"]
    assert numbered_names(["a.b 2", "axb 5"], "a.b", 1) == ["a.b 3"]


def test_phrases_are_cleaned_and_bounded():
    assert clean_phrase("  red\tcar\n") == "red car"
    assert clean_phrase("car\x00\x1b[31m") == "car[31m"
    assert clean_phrase("\u202edog\u200f") == "dog"  # bidi overrides and marks go
    assert clean_phrase("دراجة") == "دراجة"  # right-to-left letters stay
    assert len(clean_phrase("x" * 100_000)) == 100
    assert clean_phrase("\x00 \u200b") == ""


def test_stored_scores_are_checked():
    assert check_finder_score(None, "o") is None and check_finder_score(1, "o") == 1.0
    for bad in (1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="finder_score"):
            check_finder_score(bad, "objects[0]")
