"""TrackingSession behaviour on a tiny random model (image size 64): the engine contract.

Numbers are meaningless at random init; these tests check bookkeeping: what is
read, computed, stored, recomputed and returned. Parity with the reference is in
test_session_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerance import CHAIN_ULPS, assert_parity

from model.engine.session import FrameResult, FrameSource, ObjectResult, Prompt, TrackingSession
from model.sam2.build import build_model
from model.sam2.config import get_config

H, W = 48, 64


class CountingVideo:
    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self.reads: list[int] = []

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads.append(index)
        img = np.full((H, W, 3), 30, np.uint8)
        img[10:30, 5 + 3 * index : 25 + 3 * index] = (200, 80, 60)
        return img


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(get_config("sam2.1-tiny", image_size=64))


def _click(x: float = 15, y: float = 20, label: int = 1) -> Prompt:
    return Prompt(points=np.array([[x, y]]), labels=np.array([label]))


def _session(model, n: int = 8, **kwargs) -> tuple[TrackingSession, CountingVideo]:
    video = CountingVideo(n)
    return TrackingSession(model, video, device="cpu", **kwargs), video


def test_frames_are_read_lazily(model) -> None:
    session, video = _session(model)
    assert isinstance(video, FrameSource)
    assert video.reads == []
    session.add_prompt(3, 1, _click())
    assert video.reads == [3]
    assert session.is_encoded(3) and not session.is_encoded(0)
    session.encode_frame(5)
    assert session.is_encoded(5) and video.reads == [3, 5]
    assert session.video_size == (H, W) and session.num_frames == 8


def test_prompt_returns_mask_and_registers_object(model) -> None:
    session, _ = _session(model)
    result = session.add_prompt(2, 7, _click())
    assert isinstance(result, ObjectResult) and result.obj_id == 7
    assert result.mask.shape == (H, W) and result.mask.dtype == bool
    assert result.present == (result.score > 0)
    assert session.object_ids == [7] and session.keyframes(7) == [2]
    np.testing.assert_array_equal(session.mask(7, 2), result.mask)
    box = session.add_prompt(4, 8, Prompt(box=np.array([5.0, 8.0, 30.0, 35.0])))
    mask = np.zeros((H, W), bool)
    mask[5:20, 10:30] = True
    both = session.add_prompt(
        5,
        8,
        Prompt(points=np.array([[12.0, 12.0]]), labels=np.array([1]), box=np.array([5, 5, 30, 30])),
    )
    from_mask = session.add_prompt(6, 9, Prompt(mask=mask))
    assert box.mask.shape == both.mask.shape == from_mask.mask.shape == (H, W)
    # A mask prompt is taken as the output itself.
    assert (from_mask.mask == mask).mean() > 0.9
    assert session.object_ids == [7, 8, 9] and session.keyframes(8) == [4, 5]


def test_propagation_yields_every_frame_and_stores_masks(model) -> None:
    session, _ = _session(model)
    session.add_prompt(0, 1, _click())
    session.add_prompt(2, 2, _click(40, 20))
    results = list(session.propagate(mode="full"))
    assert [r.frame for r in results] == list(range(8))
    assert all(isinstance(r, FrameResult) for r in results)
    # Object 2 is tracked from the first keyframe of any object, as the reference does.
    assert all(set(r.objects) == {1, 2} for r in results)
    for r in results:
        for obj_id, obj in r.objects.items():
            np.testing.assert_array_equal(session.mask(obj_id, r.frame), obj.mask)
            assert np.isfinite(obj.score) and np.isfinite(obj.iou)


def test_backward_and_both(model) -> None:
    session, _ = _session(model)
    session.add_prompt(4, 1, _click())
    assert [r.frame for r in session.propagate(direction="backward")] == [4, 3, 2, 1, 0]
    session.add_prompt(4, 1, _click(20, 20), clear_old=False)
    frames = [r.frame for r in session.propagate(direction="both", mode="full")]
    assert frames == [4, 5, 6, 7, 4, 3, 2, 1, 0]


def test_cancel_keeps_work_and_local_resumes(model) -> None:
    session, _ = _session(model)
    session.add_prompt(0, 1, _click())
    seen = []

    def stop() -> bool:
        return len(seen) >= 3

    for r in session.propagate(should_stop=stop):
        seen.append(r.frame)
    assert seen == [0, 1, 2]
    assert session.mask(1, 2) is not None and session.mask(1, 3) is None
    assert [r.frame for r in session.propagate()] == [3, 4, 5, 6, 7]
    # Abandoning the generator counts as a cancel too.
    session.add_prompt(2, 1, _click(20, 20))
    frames = session.propagate()
    assert next(frames).frame == 2 and next(frames).frame == 3
    frames.close()
    assert [r.frame for r in session.propagate()] == [4, 5, 6, 7]


def test_local_repropagation_stops_at_next_keyframe(model) -> None:
    session, _ = _session(model, n=10)
    session.add_prompt(0, 1, _click())
    session.add_prompt(6, 1, _click(30, 20))
    list(session.propagate(mode="full"))
    outputs = session._tracks[1].outputs
    before = {f: outputs[f] for f in range(10)}
    session.add_prompt(3, 1, _click(20, 20, label=0), clear_old=False)
    frames = [r.frame for r in session.propagate()]
    assert frames == [3, 4, 5]
    assert all(outputs[f] is before[f] for f in (0, 1, 2, 6, 7, 8, 9))
    assert all(outputs[f] is not before[f] for f in (3, 4, 5))
    assert session.keyframes(1) == [0, 3, 6]
    # Nothing left to do: a second local pass visits no frame.
    assert list(session.propagate()) == []


def test_new_object_after_tracking_and_removal(model) -> None:
    session, _ = _session(model)
    session.add_prompt(0, 1, _click())
    list(session.propagate())
    session.add_prompt(5, 2, _click(40, 20))
    frames = [r.frame for r in session.propagate()]
    assert frames == [5, 6, 7]
    assert session.mask(2, 6) is not None and session.mask(2, 4) is None
    assert session.mask(1, 4) is not None
    session.remove_object(1)
    assert session.object_ids == [2]
    with pytest.raises(ValueError, match="unknown object"):
        session.mask(1, 4)


def test_clear_prompts_downgrades_keyframe(model) -> None:
    session, _ = _session(model)
    session.add_prompt(0, 1, _click())
    session.add_prompt(3, 1, _click(25, 20))
    list(session.propagate(mode="full"))
    session.clear_prompts(3, 1)
    assert session.keyframes(1) == [0]
    assert session.mask(1, 3) is not None
    # Frame 3 is recomputed now that it is no longer a keyframe.
    assert [r.frame for r in session.propagate()] == list(range(3, 8))


@torch.no_grad()
def test_batched_objects_equal_separate_sessions(model) -> None:
    together, video = _session(model, n=5, fill_hole_area=0)
    clicks = {1: _click(10, 20), 2: _click(45, 25)}
    for obj_id, click in clicks.items():
        together.add_prompt(0, obj_id, click)
    list(together.propagate())
    # One read (and one encoder pass) per frame, shared by both objects.
    assert sorted(video.reads) == list(range(5))
    for obj_id, click in clicks.items():
        alone, _ = _session(model, n=5, fill_hole_area=0)
        alone.add_prompt(0, obj_id, click)
        list(alone.propagate())
        for frame in range(5):
            # Batched and single-object runs block their matmuls differently.
            assert_parity(
                together._low_res_logits(obj_id, frame),
                alone._low_res_logits(obj_id, frame),
                ulps=CHAIN_ULPS,
            )


def test_spilled_memories_are_read_back_exactly(model) -> None:
    roomy, _ = _session(model, n=8, fill_hole_area=0)
    tight, _ = _session(model, n=8, fill_hole_area=0)
    tight._bank.ram_frames = 1  # spill all but one non-keyframe output per object
    for session in (roomy, tight):
        session.add_prompt(0, 1, _click())
        list(session.propagate())
        session.add_prompt(6, 1, _click(30, 20, label=0), clear_old=False)
        list(session.propagate(mode="full"))
    assert tight._bank.frames_in_ram <= 1
    for frame in range(8):
        assert torch.equal(roomy._low_res_logits(1, frame), tight._low_res_logits(1, frame))


def test_feature_cache_is_bounded(model) -> None:
    session, _ = _session(model)
    session.encode_frame(0)
    one = session.cache_bytes_used
    bounded, _ = _session(model, cache_bytes=int(2.5 * one))
    for frame in range(5):
        bounded.encode_frame(frame)
    assert bounded.cache_bytes_used == 2 * one
    assert [bounded.is_encoded(f) for f in range(5)] == [False, False, False, True, True]


def test_interactive_reads_keep_a_window_of_frames(model) -> None:
    session, video = _session(model, n=12, cache_frames=4)
    for frame in range(6):
        session.encode_frame(frame)
    assert [session.is_encoded(f) for f in range(6)] == [False, False, True, True, True, True]
    session.add_prompt(2, 1, _click())  # a hit: 2 becomes the most recent, 3 goes next
    assert video.reads == list(range(6))
    session.encode_frame(7)
    assert session.cache_frames_used == 4
    assert [f for f in range(12) if session.is_encoded(f)] == [2, 4, 5, 7]


@pytest.mark.parametrize(("mode", "direction"), [("full", "forward"), ("local", "both")])
def test_one_pass_propagation_does_not_fill_the_feature_cache(model, mode, direction) -> None:
    """A pass reads each frame once: it leaves the cache as the user's clicks left it."""
    n = 16
    session, video = _session(model, n=n, cache_frames=4)  # a pass visits more than that
    session.add_prompt(8, 1, _click())
    for frame in (9, 10):  # the app encodes ahead of the user's position while idle
        session.encode_frame(frame)
    used, reads = session.cache_bytes_used, len(video.reads)
    visited = [r.frame for r in session.propagate(direction=direction, mode=mode)]
    assert len(visited) == (8 if direction == "forward" else 17)
    assert [f for f in range(n) if session.is_encoded(f)] == [8, 9, 10]
    assert session.cache_frames_used == 3 and session.cache_bytes_used == used
    # Cached frames were used, the keyframe needs none, and every other frame is decoded once.
    assert len(video.reads) - reads == len(visited) - (3 if direction == "forward" else 4)


def test_bad_input_raises_value_error(model) -> None:
    session, _ = _session(model)
    with pytest.raises(ValueError, match="frame"):
        session.add_prompt(8, 1, _click())
    with pytest.raises(ValueError, match="labels"):
        session.add_prompt(0, 1, Prompt(points=np.array([[1.0, 2.0]])))
    with pytest.raises(ValueError, match="mask"):
        session.add_prompt(0, 1, Prompt(mask=np.zeros((3, 3), bool)))
    with pytest.raises(ValueError, match="needs"):
        session.add_prompt(0, 1, Prompt())
    with pytest.raises(ValueError, match="no object"):
        session.propagate()
    session.add_prompt(0, 1, _click())
    with pytest.raises(ValueError, match="direction"):
        session.propagate(direction="sideways")
    with pytest.raises(ValueError, match="mode"):
        session.propagate(mode="partial")
    with pytest.raises(ValueError, match="unknown object"):
        session.clear_prompts(0, 5)


def test_bf16_autocast_runs(model) -> None:
    session, _ = _session(model, n=3, autocast=True)
    session.add_prompt(0, 1, _click())
    results = list(session.propagate())
    assert [r.frame for r in results] == [0, 1, 2]
    stored = session._bank.tensors(1, session._tracks[1], 2)
    assert stored.memory.dtype == torch.bfloat16 and stored.logits.dtype == torch.float32
    assert all(np.isfinite(r.objects[1].score) for r in results)
