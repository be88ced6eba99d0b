"""Undoing a prompt edit puts the frame's engine state back exactly (issue 28, item 2).

A tiny random model (image size 64): the figures are meaningless, the bookkeeping is not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.engine import prompt_history
from model.engine.session import Prompt, TrackingSession
from model.sam2.build import build_model
from model.sam2.config import get_config

H, W = 48, 64


class Video:
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> np.ndarray:
        img = np.full((H, W, 3), 30, np.uint8)
        img[10:30, 5 + 3 * index : 25 + 3 * index] = (200, 80, 60)
        return img


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(get_config("sam2.1-tiny", image_size=64))


def _click(*xy: tuple[float, float]) -> Prompt:
    return Prompt(points=np.array(xy, dtype=float), labels=np.ones(len(xy), dtype=int))


def _tracked(model) -> TrackingSession:
    session = TrackingSession(model, Video(), device="cpu")
    session.add_prompt(0, 1, _click((15, 20)))
    for _ in session.propagate(0, "forward"):
        pass
    return session


def _frame_state(session: TrackingSession, frame: int) -> dict:
    track = session._tracks[1]
    out = track.outputs[frame]
    x = session._bank.tensors(1, track, frame)
    return {
        "mask": out.mask.unpack().copy(),
        "figures": (out.score, out.iou, out.is_cond),
        "tensors": [t.clone() for t in (x.logits, x.obj_ptr, x.score)],
        "memory": None if x.memory is None else x.memory.clone(),
        "keyframes": session.keyframes(1),
        "pending": set(track.pending),
        "tracked": dict(track.tracked),
        "dirty": {r: set(d) for r, d in track.dirty.items()},
    }


def _assert_same(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert a["figures"] == b["figures"]
    for x, y in zip(a["tensors"], b["tensors"], strict=True):
        assert torch.equal(x, y)
    assert (a["memory"] is None) == (b["memory"] is None)
    assert a["memory"] is None or torch.equal(a["memory"], b["memory"])
    for key in ("keyframes", "pending", "tracked", "dirty"):
        assert a[key] == b[key], key


def test_undoing_a_painted_mask_on_a_tracked_frame_restores_it_exactly(model) -> None:
    session = _tracked(model)
    before = _frame_state(session, 3)
    painted = np.zeros((H, W), bool)
    painted[5:40, 5:60] = True
    session.add_prompt(3, 1, Prompt(mask=painted))
    assert session.keyframes(1) == [0, 3]
    session.clear_prompts(3, 1)  # the undo: the frame had no prompts
    _assert_same(_frame_state(session, 3), before)
    # Nothing is left for a local pass to recompute.
    assert not session.has_pending_work("forward")


def test_undoing_a_click_on_a_keyframe_restores_the_earlier_click_exactly(model) -> None:
    session = _tracked(model)
    session.add_prompt(3, 1, _click((20, 20)))
    first = _frame_state(session, 3)
    session.add_prompt(3, 1, _click((20, 20), (40, 25)))
    assert session._tracks[1].points[3].coords.shape[1] == 2
    undone = session.add_prompt(3, 1, _click((20, 20)))  # the undo sends the first click
    _assert_same(_frame_state(session, 3), first)
    np.testing.assert_array_equal(undone.mask, first["mask"])
    assert (undone.score, undone.iou) == first["figures"][:2]


def test_recomputing_instead_would_not_restore_the_click(model) -> None:
    """Why the states are kept: the same click again is refined from the frame's logits."""
    session = _tracked(model)
    first = session.add_prompt(3, 1, _click((20, 20)))
    session.add_prompt(3, 1, _click((20, 20), (40, 25)))
    session._history.clear()
    recomputed = session.add_prompt(3, 1, _click((20, 20)))
    assert recomputed.iou != first.iou or not np.array_equal(recomputed.mask, first.mask)


def test_after_a_pass_clearing_downgrades_the_keyframe_as_before(model) -> None:
    session = _tracked(model)
    session.add_prompt(3, 1, _click((40, 20)))
    clicked = session.mask(1, 3).copy()
    for _ in session.propagate(3, "forward"):
        pass
    session.clear_prompts(3, 1)
    # Frames 4.. were tracked from the click: the frame keeps it and is tracked again.
    assert session.keyframes(1) == [0]
    np.testing.assert_array_equal(session.mask(1, 3), clicked)
    assert 3 in session._tracks[1].dirty[False] and session.has_pending_work("forward")


def test_kept_states_are_bounded(model, monkeypatch) -> None:
    monkeypatch.setattr(prompt_history, "MAX_KEPT", 3)
    session = _tracked(model)
    for x in (20, 22, 24, 26, 28):
        session.add_prompt(3, 1, _click((x, 20)))
    assert len(session._history._kept) == 3
    session.remove_object(1)
    assert len(session._history._kept) == 0
