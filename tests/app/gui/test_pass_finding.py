"""The worker's side of finding while propagating, without Qt: which frames are searched, what
counts as new, waiting for found objects to reach the session, and a failing finder."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from fake_engine import disc

from app.gui.worker.jobs import PassFind
from app.gui.worker.pass_finding import PassFinder
from app.project.mask_codec import decode_rle

SIZE = (60, 80)


@dataclass
class Result:
    frame: int
    objects: dict


@dataclass
class Tracked:
    mask: np.ndarray
    score: float = 5.0


@dataclass
class Instances:
    masks: torch.Tensor
    scores: torch.Tensor


class StillFinder:
    """Always finds the same two discs, whatever the frame."""

    def __init__(self, fail: bool = False) -> None:
        self.frames: list[int] = []
        self.fail = fail

    def find(self, image, phrase, *, threshold, precision):
        self.frames.append(int(image[0, 0, 0]))  # the frame's number, written in its pixels
        if self.fail:
            raise RuntimeError("out of memory\nsecond line")
        masks = np.stack([disc(SIZE, 20, 20), disc(SIZE, 60, 40)])
        return Instances(torch.from_numpy(masks), torch.tensor([0.9, 0.7]))


def finder_for(finder, every=4, start=10):
    source = np.zeros((40, *SIZE, 3), np.uint8)
    source[:, 0, 0, 0] = np.arange(40)
    spec = PassFind(("cup",), every=every)
    return PassFinder(
        finder, spec, source, start=start, precision="exact", cancel=threading.Event()
    )


def test_due_frames_both_ways_from_the_start_but_not_it():
    finder = StillFinder()
    passing = finder_for(finder)
    tracked = {1: Tracked(disc(SIZE, 20, 20)), 2: Tracked(disc(SIZE, 60, 40))}
    for frame in [*range(10, 20), *range(9, 0, -1)]:
        assert passing.look(1, Result(frame, tracked), [1, 2]) is None  # both tracked
    assert finder.frames == [14, 18, 6, 2]


def test_new_instances_best_first_and_the_next_find_waits_for_them():
    finder = StillFinder()
    passing = finder_for(finder)
    tracked = {1: Tracked(disc(SIZE, 20, 20)), 2: Tracked(disc(SIZE, 60, 40), score=-1.0)}
    found = passing.look(7, Result(14, tracked), [1, 2])
    assert found is not None and (found.request_id, found.frame) == (7, 14)
    assert found.phrases == ("cup",) and found.scores == pytest.approx((0.7,))  # 2 is absent
    assert np.array_equal(decode_rle(found.masks[0], SIZE), disc(SIZE, 60, 40))
    assert passing.look(7, Result(18, tracked), [1, 2]) is None
    assert finder.frames == [14]  # 18 skipped: the found object is not in the session yet
    assert passing.look(7, Result(22, tracked), [1, 2, 3]) is not None  # it is now


def test_a_failing_finder_is_one_line_once_and_the_pass_goes_on():
    finder = StillFinder(fail=True)
    passing = finder_for(finder)
    found = passing.look(3, Result(14, {}), [])
    assert found is not None and found.error == "finding stopped: out of memory"
    assert passing.look(3, Result(18, {}), []) is None and finder.frames == [14]
