"""Correction clicks reuse memory attention's output from tracking (model.engine.conditioned_cache).

The cache must never change a result: a click with it equals a click without it (and
the reference's click: test_session_parity's correction scenario runs through it), and
an entry whose memories changed must not be used.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from moving_box import MovingBoxVideo, tiny_model
from tolerance import assert_parity

from model.engine.conditioned_cache import ConditionedCache
from model.engine.session import Prompt, TrackingSession
from model.sam2.types import Memory


def Video() -> MovingBoxVideo:  # noqa: N802 - stands for the class the tests used
    return MovingBoxVideo(10)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _click(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(points=np.array([[x, y]]), labels=np.array([label]))


def _tracked(model, *, cache: bool) -> TrackingSession:
    session = TrackingSession(model, Video(), device="cpu", cache_frames=64)
    if not cache:
        session._conditioned = ConditionedCache(frames_per_object=0)
    session.add_prompt(0, 1, _click(15, 20))
    session.add_prompt(0, 2, _click(40, 12))
    list(session.propagate(mode="full"))
    for frame in range(10):
        session.encode_frame(frame)  # a "tracked, encoded" frame, as the app prefetches
    return session


def _count_memory_attention(model) -> list[int]:
    calls: list[int] = []
    model.memory_attention.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


def test_click_on_tracked_frame_skips_memory_attention_and_equals_uncached(model) -> None:
    cached, plain = _tracked(model, cache=True), _tracked(model, cache=False)
    calls = _count_memory_attention(model)
    try:
        for frame, click in [(6, _click(30, 20, 0)), (6, _click(25, 18)), (3, _click(20, 25))]:
            before = len(calls)
            got = cached.add_prompt(frame, 1, click, clear_old=False)
            hits = len(calls) == before
            want = plain.add_prompt(frame, 1, click, clear_old=False)
            assert hits, f"the click on tracked frame {frame} ran memory attention"
            assert len(calls) == before + 1  # the uncached session did
            assert_parity(cached._low_res_logits(1, frame), plain._low_res_logits(1, frame))
            np.testing.assert_array_equal(got.mask, want.mask)
            assert got.score == pytest.approx(want.score, rel=1e-4, abs=1e-4)
        # After re-tracking, the entries built from the new memories are used again.
        list(cached.propagate())
        list(plain.propagate())
        before = len(calls)
        got = cached.add_prompt(8, 2, _click(50, 15))
        assert len(calls) == before
        plain.add_prompt(8, 2, _click(50, 15))
        assert_parity(cached._low_res_logits(2, 8), plain._low_res_logits(2, 8))
    finally:
        model.memory_attention._forward_pre_hooks.clear()


def test_changed_memories_are_not_reused(model) -> None:
    cached, plain = _tracked(model, cache=True), _tracked(model, cache=False)
    calls = _count_memory_attention(model)
    try:
        for session in (cached, plain):
            # A new keyframe at 4, re-tracked up to 5 only: frame 7's entry (computed from the
            # old frames 4 and 5) is stale, and frame 7 itself was not re-tracked.
            session.add_prompt(4, 1, _click(30, 20))
            seen: list[int] = []
            for r in session.propagate(should_stop=lambda seen=seen: len(seen) >= 2):
                seen.append(r.frame)
            assert seen == [4, 5]
        before = len(calls)
        got = cached.add_prompt(7, 1, _click(33, 20), clear_old=False)
        assert len(calls) == before + 1  # recomputed, not taken from the cache
        want = plain.add_prompt(7, 1, _click(33, 20), clear_old=False)
        assert_parity(cached._low_res_logits(1, 7), plain._low_res_logits(1, 7))
        np.testing.assert_array_equal(got.mask, want.mask)
    finally:
        model.memory_attention._forward_pre_hooks.clear()


def _memories(*tensors: torch.Tensor) -> list[tuple[int, Memory]]:
    return [(i, Memory(features=t, obj_ptr=t[:, :1, 0, 0])) for i, t in enumerate(tensors)]


def test_cache_matches_only_the_same_tensors() -> None:
    cache = ConditionedCache()
    a, b = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    ptr = torch.ones(1, 8)
    mems = _memories(a, b)
    fused = torch.randn(1, 8, 2, 2)
    cache.put(1, 5, mems, [(1, ptr)], 16, fused)
    assert torch.equal(cache.get(1, 5, mems, [(1, ptr)], 16), fused)
    assert cache.get(1, 5, mems, [(1, ptr)], 15) is None  # another max_pointers: dropped
    assert len(cache) == 0
    cache.put(1, 5, mems, [(1, ptr)], 16, fused)
    # Equal values in new tensors (re-tracked or read back from disk) do not match.
    assert cache.get(1, 5, _memories(a.clone(), b), [(1, ptr)], 16) is None
    cache.put(1, 5, mems, [(1, ptr)], 16, fused)
    assert cache.get(1, 5, mems, [(2, ptr)], 16) is None  # another distance
    cache.put(1, 5, mems, [(1, ptr)], 16, fused)
    assert cache.get(1, 5, mems[:1], [(1, ptr)], 16) is None  # fewer memories
    assert cache.get(2, 5, mems, [(1, ptr)], 16) is None  # another object


def test_cache_is_bounded_per_object_and_in_bytes() -> None:
    fused = torch.zeros(1, 16, 8, 8)  # 4 KiB
    cache = ConditionedCache(frames_per_object=3, max_bytes=5 * 4096)
    mems = _memories(torch.ones(1, 4, 2, 2))
    for frame in range(5):
        cache.put(1, frame, mems, [], 1, fused)
    assert len(cache) == 3 and cache.get(1, 1, mems, [], 1) is None
    assert cache.get(1, 4, mems, [], 1) is not None
    for frame in range(3):
        cache.put(2, frame, mems, [], 1, fused)
    assert len(cache) == 5 and cache.bytes_used == 5 * 4096
    cache.forget_object(2)
    assert len(cache) == 2 and cache.bytes_used == 2 * 4096
    with pytest.raises(ValueError, match="one object"):
        cache.put(1, 0, mems, [], 1, torch.zeros(2, 16, 8, 8))
