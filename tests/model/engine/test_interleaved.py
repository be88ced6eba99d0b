"""Edits during a propagation (`LivePass`) equal the same edits done while idle, bit for bit.

Each test runs one session through `LivePass`, with edits arriving while a given frame is
being shown, and a second session through the idle order the scheme stands for
("propagate until k, cancel, edit, propagate again"); masks and low-res logits of every
object on every frame must be identical.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch

from model.engine.live_pass import LivePass
from model.engine.session import Prompt, TrackingSession
from model.sam2.build import build_model
from model.sam2.config import get_config

H, W, N = 48, 64, 10


class Video:
    def __len__(self) -> int:
        return N

    def __getitem__(self, index: int) -> np.ndarray:
        img = np.full((H, W, 3), 30, np.uint8)
        img[10:30, 5 + 3 * index : 25 + 3 * index] = (200, 80, 60)
        img[32:44, 40 - 2 * index : 52 - 2 * index] = (40, 180, 90)
        return img


class ListInbox:
    """Edits the test drops in while the consumer looks at a frame; no barrier requests."""

    def __init__(self) -> None:
        self.edits: list[Callable[[], object]] = []

    def take_edits(self) -> list[Callable[[], object]]:
        taken, self.edits = self.edits, []
        return taken

    def must_yield(self) -> bool:
        return False


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(get_config("sam2.1-tiny", image_size=64))


def click(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(points=np.array([[x, y]], np.float32), labels=np.array([label], np.int32))


def new_session(model) -> TrackingSession:
    session = TrackingSession(model, Video(), device="cpu")
    session.add_prompt(0, 1, click(15, 20))
    session.add_prompt(0, 2, click(45, 38))
    return session


def snapshot(session: TrackingSession) -> dict[tuple[int, int], tuple[bytes, torch.Tensor]]:
    out = {}
    for o in session.object_ids:
        for f in range(N):
            mask = session.mask(o, f)
            if mask is not None:
                out[(o, f)] = (np.packbits(mask).tobytes(), session._low_res_logits(o, f))
    return out


def assert_identical(live: TrackingSession, idle: TrackingSession) -> None:
    a, b = snapshot(live), snapshot(idle)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][0] == b[key][0], f"mask differs at (obj, frame) {key}"
        assert torch.equal(a[key][1], b[key][1]), f"logits differ at (obj, frame) {key}"
    for o in live.object_ids:
        assert live.keyframes(o) == idle.keyframes(o)


def run_live(session, start, direction, script, cancel_at=None) -> tuple[list[int], bool]:
    """Consume a LivePass; `script[(frame, n)]` edits arrive while `frame` is shown for the
    n-th time; with `cancel_at` (same key) the user cancels then too. Returns the frames
    shown and whether the cancel flag was left set."""
    inbox, cancel = ListInbox(), threading.Event()
    seen: list[int] = []
    for result in LivePass(session, start, direction, inbox=inbox, cancel=cancel).frames():
        seen.append(result.frame)
        key = (result.frame, seen.count(result.frame))
        inbox.edits += script.get(key, [])
        if key == cancel_at:
            cancel.set()
    return seen, cancel.is_set()


def until(session, start, direction, frame) -> None:
    """The idle half: propagate until `frame` has been shown, then cancel."""
    engine_pass = session.propagate(start, direction)
    for result in engine_pass:
        if result.frame == frame:
            break
    engine_pass.close()


def test_prompts_ahead_and_behind_equal_the_idle_order(model) -> None:
    live, idle = new_session(model), new_session(model)
    ahead, behind = click(30, 20), click(14, 22)
    seen, _ = run_live(
        live,
        0,
        "forward",
        {(3, 1): [lambda: live.add_prompt(6, 1, ahead), lambda: live.add_prompt(1, 1, behind)]},
    )
    until(idle, 0, "forward", 3)
    idle.add_prompt(6, 1, ahead)
    idle.add_prompt(1, 1, behind)
    list(idle.propagate(None, "forward"))
    # The restarted local pass starts from the prompt behind and runs to the end.
    assert seen == [0, 1, 2, 3, *range(1, N)]
    assert live.keyframes(1) == [0, 1, 6]
    assert_identical(live, idle)
    assert not live.has_pending_work("forward")


def test_without_edits_a_live_pass_equals_one_engine_pass(model) -> None:
    live, idle = new_session(model), new_session(model)
    seen, _ = run_live(live, 4, "both", {})
    reference = [r.frame for r in idle.propagate(4, "both")]
    assert seen == reference
    assert_identical(live, idle)


def test_edit_in_the_backward_half_starts_a_forward_pass(model) -> None:
    live, idle = new_session(model), new_session(model)
    live.add_prompt(4, 1, click(27, 20))
    idle.add_prompt(4, 1, click(27, 20))
    prompt = click(40, 21)
    seen, _ = run_live(live, 4, "both", {(2, 2): [lambda: live.add_prompt(8, 1, prompt)]})
    list(idle.propagate(4, "forward"))
    until(idle, 4, "backward", 2)
    idle.add_prompt(8, 1, prompt)
    list(idle.propagate(None, "backward"))
    list(idle.propagate(None, "forward"))
    assert seen[-1] == N - 1 and seen.count(9) == 2  # the forward follow-up ran
    assert_identical(live, idle)
    assert not live.has_pending_work("both")


def test_cancel_with_a_waiting_prompt_applies_it_and_runs_its_own_pass(model) -> None:
    live, idle = new_session(model), new_session(model)
    prompt = click(14, 21)
    # The prompt is still waiting when the cancel lands: both come while frame 5 is shown.
    seen, still_cancelled = run_live(
        live, 0, "forward", {(5, 1): [lambda: live.add_prompt(1, 1, prompt)]}, cancel_at=(5, 1)
    )
    until(idle, 0, "forward", 5)
    held = idle.take_pending("forward")
    idle.add_prompt(1, 1, prompt)
    list(idle.propagate(None, "forward"))
    idle.restore_pending(held)
    # The prompt's own span (2..9) ran; where the cancelled pass stopped stays marked.
    assert seen == [0, 1, 2, 3, 4, 5, *range(1, N)]
    assert not still_cancelled
    assert live.has_pending_work("forward")
    assert_identical(live, idle)


def test_cancel_without_waiting_edits_just_stops(model) -> None:
    live = new_session(model)
    seen, _ = run_live(live, 0, "forward", {}, cancel_at=(2, 1))
    assert seen == [0, 1, 2]
    assert live.mask(1, 5) is None and live.has_pending_work("forward")


def test_removing_and_clearing_during_a_pass_stay_consistent(model) -> None:
    live, idle = new_session(model), new_session(model)
    seen, _ = run_live(
        live,
        0,
        "forward",
        {(3, 1): [lambda: live.remove_object(2)], (5, 1): [lambda: live.clear_prompts(0, 1)]},
    )
    until(idle, 0, "forward", 3)
    idle.remove_object(2)
    until(idle, None, "forward", 5)
    idle.clear_prompts(0, 1)
    # No keyframe is left: the pass ends quietly instead of failing.
    assert seen == [0, 1, 2, 3, 4, 5]
    assert live.object_ids == [1] and live.keyframes(1) == []
    assert_identical(live, idle)


@pytest.mark.parametrize("mode", ["local", "full"])
def test_a_cancel_keeps_every_span_left_beyond_the_next_keyframe(model, mode) -> None:
    session = new_session(model)
    session.add_prompt(5, 1, click(30, 20))
    engine_pass = session.propagate(0, "forward", mode=mode)
    assert [next(engine_pass).frame for _ in range(3)] == [0, 1, 2]
    engine_pass.close()
    # Frames 3..9 were left: the resume must cross keyframe 5 and reach the end.
    resumed = [r.frame for r in session.propagate(None, "forward")]
    assert resumed == [3, 4, 5, 6, 7, 8, 9]
    assert all(session.mask(o, 9) is not None for o in (1, 2))
