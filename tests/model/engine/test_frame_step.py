"""Cancelling a propagation inside a frame (between model stages) leaves the session as a
cancel between frames does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from moving_box import MovingBoxVideo, tiny_model

from model.engine.frame_step import Cancelled, cancellable, condition_group
from model.engine.session import Prompt, TrackingSession
from model.sam2.types import Memory


def Video() -> MovingBoxVideo:  # noqa: N802 - stands for the class the tests used
    return MovingBoxVideo(7)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _session(model) -> TrackingSession:
    session = TrackingSession(model, Video(), device="cpu")
    session.add_prompt(0, 1, Prompt(points=np.array([[15.0, 20.0]]), labels=np.array([1])))
    session.add_prompt(0, 2, Prompt(points=np.array([[40.0, 12.0]]), labels=np.array([1])))
    return session


def test_stop_after_the_encoder_drops_the_frame_like_a_stop_between_frames(model) -> None:
    encoded: list[int] = []
    layers_run: list[int] = []
    hooks = [
        model.image_encoder.register_forward_hook(lambda *_: encoded.append(1)),
        model.memory_attention.layers[0].cross_attn_image.register_forward_hook(
            lambda *_: layers_run.append(1)
        ),
    ]
    try:
        inside = _session(model)
        seen: list[int] = []
        # Frame 0 was encoded for the clicks (and stays cached): the fourth pass is frame 3.
        for r in inside.propagate(should_stop=lambda: len(encoded) >= 4):
            seen.append(r.frame)
        assert seen == [0, 1, 2] and len(encoded) == 4
        assert len(layers_run) == 4  # frames 1 and 2, one call per object on CPU; not 3
    finally:
        for hook in hooks:
            hook.remove()
    between = _session(model)
    seen_between: list[int] = []
    for r in between.propagate(should_stop=lambda: len(seen_between) >= 3):
        seen_between.append(r.frame)
    assert seen_between == seen
    for obj in (1, 2):
        assert inside.mask(obj, 3) is None and 3 not in inside._tracks[obj].tracked
        assert inside._tracks[obj].dirty == between._tracks[obj].dirty
    # Both resume at frame 3 and end up with the same masks.
    assert [r.frame for r in inside.propagate()] == [3, 4, 5, 6]
    assert [r.frame for r in between.propagate()] == [3, 4, 5, 6]
    for obj in (1, 2):
        for frame in range(7):
            np.testing.assert_array_equal(inside.mask(obj, frame), between.mask(obj, frame))


def test_cancellable_checks_every_stage_and_removes_its_hooks(model) -> None:
    checks: list[int] = []

    def stop() -> bool:
        checks.append(1)
        return len(checks) > 4

    image = torch.zeros(1, 3, 64, 64)
    with pytest.raises(Cancelled), torch.inference_mode(), cancellable(model, stop):
        model.encode_image(image)
    assert len(checks) == 5  # stopped inside the image encoder, before its fifth block
    with torch.inference_mode(), cancellable(model, stop):
        pass
    with torch.inference_mode():
        model.encode_image(image)  # no hook left behind
    assert len(checks) == 5


def test_stop_while_encoding_prompt_memories_keeps_them_pending(model) -> None:
    session = _session(model)
    assert list(session.propagate(should_stop=lambda: True)) == []
    assert session._tracks[1].pending == {0} and session._tracks[2].pending == {0}
    assert [r.frame for r in session.propagate()] == list(range(7))
    assert not session._tracks[1].pending and session.mask(2, 6) is not None


def test_objects_run_one_per_call_share_layer_zero_bit_for_bit(model) -> None:
    """`condition_group` one object per call (CPU): layer 0's self-attention runs once for
    the frame, and every object's output equals its own unshared call."""
    features = _session(model)._features(2)
    _, c, h, w = features.vision.shape
    gen = torch.Generator().manual_seed(0)
    items = []
    for obj in (1, 2, 3):
        mems = [
            (p, Memory(torch.randn(1, model.cfg.mem_dim, h, w, generator=gen), torch.randn(1, c)))
            for p in (0, 2)
        ]
        items.append((obj, mems, [(1, torch.randn(1, c, generator=gen))]))
    calls: list[int] = []
    hook = model.memory_attention.layers[0].self_attn.register_forward_pre_hook(
        lambda *_: calls.append(1)
    )
    try:
        with torch.inference_mode():
            grouped = condition_group(model, features, items, 4, per_call=1)
            assert len(calls) == 1
            for i, (_, mems, ptrs) in enumerate(items):
                alone = model.condition_on_memories(
                    features, is_init_cond_frame=False, memories=mems, pointers=ptrs, max_pointers=4
                )
                assert torch.equal(grouped[i : i + 1], alone)
    finally:
        hook.remove()
    assert len(calls) == 4
