"""Finding during a propagation (`AutoFind` as the `LivePass` inbox) on a real tiny SAM 2.1:
an object entering mid-clip is keyed on the frame where it was found, an object already
tracked is never added again, and nothing tracked changes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from moving_box import H, W, tiny_model

from model.engine.auto_find import AutoFind, Found
from model.engine.live_pass import LivePass
from model.engine.session import Prompt, TrackingSession

N = 12
ENTERS = 5  # the second box appears on this frame


class TwoBoxes:
    """A box moving right on every frame, a second one from frame ENTERS on."""

    def __len__(self) -> int:
        return N

    def __getitem__(self, index: int) -> np.ndarray:
        img = np.full((H, W, 3), 30, np.uint8)
        img[box(index, 0)] = (200, 80, 60)
        if index >= ENTERS:
            img[box(index, 1)] = (60, 200, 90)
        return img


def box(index: int, which: int) -> tuple[slice, slice]:
    if which == 0:
        return slice(4, 20), slice(3 + 2 * index, 19 + 2 * index)
    return slice(30, 44), slice(40 - index, 54 - index)


def box_mask(index: int, which: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[box(index, which)] = True
    return mask


@pytest.fixture(scope="module")
def model():
    return tiny_model()


class Finder:
    """Sees what the tracker tracks (its masks, a pixel off) and the entering box until
    something tracks it: the finder of a clip whose objects all stay tracked."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self.calls: list[int] = []

    def __call__(self, frame: int, image: np.ndarray) -> list[Found]:
        assert image.shape == (H, W, 3)
        self.calls.append(frame)
        found = []
        for obj_id in self.session.object_ids:
            mask = self.session.mask(obj_id, frame)
            if mask is not None and mask.any():
                found.append(Found(np.roll(mask, 1, axis=1), 0.9, "box"))
        if frame >= ENTERS and len(self.session.object_ids) < 2:
            found.append(Found(box_mask(frame, 1), 0.7, "box"))
        return found


def run(session: TrackingSession, auto: AutoFind | None) -> list[int]:
    inbox = auto if auto is not None else _NoEdits()
    live = LivePass(session, None, "forward", inbox=inbox, cancel=threading.Event(), mode="full")
    seen = []
    for result in live.frames():
        seen.append(result.frame)
        if auto is not None:
            auto.look(result)
    return seen


class _NoEdits:
    def take_edits(self) -> list:
        return []

    def must_yield(self) -> bool:
        return False


def test_an_entering_object_is_keyed_where_found_and_nothing_is_duplicated(model):
    session = TrackingSession(model, TwoBoxes(), device="cpu")
    session.add_prompt(0, 1, Prompt(mask=box_mask(0, 0)))
    finder = Finder(session)
    ids = iter(range(2, 100))
    added = []
    auto = AutoFind(
        session,
        TwoBoxes(),
        finder,
        new_id=lambda found: next(ids),
        every=2,
        on_added=lambda obj, result: added.append((obj.obj_id, obj.frame, result.present)),
    )
    seen = run(session, auto)
    # Found on the first due frame where it is in view (6: frames 0, 2, 4, 6, ...), keyed there.
    assert session.object_ids == [1, 2]
    assert session.keyframes(2) == [ENTERS + 1]
    assert session.keyframes(1) == [0]
    assert [obj.obj_id for obj in auto.added] == [2] and added[0][:2] == (2, ENTERS + 1)
    np.testing.assert_array_equal(auto.added[0].found.mask, box_mask(ENTERS + 1, 1))
    assert finder.calls == list(range(0, N, 2))  # each due frame once, though 6 came twice
    assert seen.count(ENTERS + 1) == 2 and max(seen) == N - 1
    # Tracked from its keyframe to the end, nothing before it.
    assert [session.mask(2, f) is not None for f in range(N)] == [f > ENTERS for f in range(N)]
    assert auto.searches == [(f, int(f == ENTERS + 1)) for f in range(0, N, 2)]


def test_finding_changes_nothing_already_tracked(model):
    alone = TrackingSession(model, TwoBoxes(), device="cpu")
    alone.add_prompt(0, 1, Prompt(mask=box_mask(0, 0)))
    run(alone, None)
    session = TrackingSession(model, TwoBoxes(), device="cpu")
    session.add_prompt(0, 1, Prompt(mask=box_mask(0, 0)))
    ids = iter(range(2, 100))
    run(session, AutoFind(session, TwoBoxes(), Finder(session), new_id=lambda f: next(ids)))
    for frame in range(N):
        np.testing.assert_array_equal(session.mask(1, frame), alone.mask(1, frame))


def test_a_first_find_before_any_prompt_starts_the_tracking(model):
    session = TrackingSession(model, TwoBoxes(), device="cpu")

    def find(frame: int, image: np.ndarray) -> list[Found]:
        return [Found(box_mask(frame, 0), 0.6, "red"), Found(box_mask(frame, 0), 0.9, "box")]

    auto = AutoFind(session, TwoBoxes(), find, new_id=lambda f: 7, every=100)
    objects = auto.search(0, {})
    # Two finds of one object: one new object, the best scored.
    assert [(o.obj_id, o.found.phrase) for o in objects] == [(7, "box")]
    assert session.object_ids == []  # queued, not applied
    assert auto.apply_waiting() == 1 and session.keyframes(7) == [0]
    assert len(run(session, auto)) == N
    assert not auto.due(0) and not auto.due(5) and auto.due(100)


def test_due_frames_in_either_direction_and_a_cap_on_new_objects():
    class Session:
        def add_prompt(self, frame, obj_id, prompt):
            raise AssertionError("nothing is applied in this test")

    masks = [np.eye(8, dtype=bool)[i : i + 1].repeat(8, 0) & (np.arange(8) == i) for i in range(3)]
    finds = [Found(m, 0.5 + i / 10, "x") for i, m in enumerate(masks)]
    ids = iter(range(1, 10))
    auto = AutoFind(
        Session(), [None] * 40, lambda f, image: finds, new_id=lambda f: next(ids),
        every=4, start=30, max_new=2,
    )  # fmt: skip
    assert [f for f in range(40) if auto.due(f)] == [2, 6, 10, 14, 18, 22, 26, 30, 34, 38]
    assert len(auto.search(30, {})) == 2 and auto.skipped == 1
    assert [o.found.score for o in auto.added] == [0.7, 0.6]
    with pytest.raises(ValueError, match="positive"):
        AutoFind(Session(), [], lambda f, i: [], new_id=lambda f: 1, every=0)
