"""TrackingSession against the reference SAM2VideoPredictor, frame by frame.

Both get the same weights (the perturbed random-init oracle, SAM 2.1 tiny at image
size 256) and the same preprocessed frames of a small synthetic video, and the
reference is configured as our session behaves: every prompted frame is a
conditioning frame, no hole filling. On every frame of every scenario we compare
the low-res mask logits and object scores (within 1e-3, fp32: batching objects
and encoding several prompted frames at once reorder float sums) and the binary
masks at video resolution wherever the reference's logit is clearly decided.

The reference crashes when it tracks an object on a frame with no object pointer
at all (only bf16 memories reach its attention), e.g. before the object's first
keyframe at the start of a propagation; the scenarios start where it can run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import build_reference
from PIL import Image
from tolerance import CHAIN_ULPS, assert_parity, tolerance

from model.engine.frames import preprocess_frame
from model.engine.session import Prompt, TrackingSession
from model.sam2.build import build_model
from model.sam2.config import get_config

NAME, SIZE, H, W, N = "sam2.1-tiny", 256, 96, 128, 6
OVERRIDES = ("++model.add_all_frames_to_correct_as_cond=true", "++model.fill_hole_area=0")


class ShapesVideo:
    """Three shapes drifting over a textured background, generated on demand."""

    def __init__(self, num_frames: int = N) -> None:
        self.num_frames = num_frames
        self.reads = 0
        rng = np.random.default_rng(0)
        self.background = rng.integers(20, 90, size=(H, W, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads += 1
        img = self.background.copy()
        yy, xx = np.mgrid[:H, :W]
        img[(yy - 40) ** 2 + (xx - 25 - 5 * index) ** 2 < 180] = (220, 60, 50)
        img[60 + index : 85 + index, 70 - 3 * index : 100 - 3 * index] = (40, 200, 70)
        img[(abs(yy - 20) + abs(xx - 95 + 2 * index)) < 12] = (60, 80, 230)
        return img


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ref = build_reference(NAME, image_size=SIZE, video=True, overrides=OVERRIDES)
    # The builder appends its own fill_hole_area=8 after our override; undo it.
    ref.fill_hole_area = 0
    ours = build_model(get_config(NAME, image_size=SIZE))
    ours.load_state_dict(ref.state_dict(), strict=True)
    video = ShapesVideo()
    images = torch.cat([preprocess_frame(video[i], SIZE, torch.device("cpu")) for i in range(N)])
    with torch.inference_mode():
        backbone = {i: ref.forward_image(images[i : i + 1]) for i in range(N)}
    folder = tmp_path_factory.mktemp("frames")
    for i in range(N):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / f"{i}.jpg")
    shared = {}
    return ref, ours, images, backbone, str(folder), shared


def _reference_state(setup):
    ref, _, images, backbone, folder, _ = setup
    state = ref.init_state(folder)
    state["images"] = images
    # Every frame pre-encoded: the reference's one-frame cache then always hits.
    state["cached_features"] = {i: (images[i : i + 1], backbone[i]) for i in range(N)}
    return state


def _session(setup) -> TrackingSession:
    _, ours, _, _, _, shared = setup
    session = TrackingSession(ours, ShapesVideo(), device="cpu", fill_hole_area=0)
    # Test-only: reuse image features across scenarios; the encoder is the slow part.
    # Every frame is encoded once up front, since a propagation does not cache what it reads.
    if "frames" not in shared:
        for frame in range(N):
            session.encode_frame(frame)
        shared["frames"] = session._frames
    session._frames = shared["frames"]
    return session


def _ref_output(state, obj_idx: int, frame: int):
    for store in ("temp_output_dict_per_obj", "output_dict_per_obj"):
        per_obj = state[store][obj_idx]
        for key in ("cond_frame_outputs", "non_cond_frame_outputs"):
            if frame in per_obj[key]:
                return per_obj[key][frame]
    raise AssertionError(f"reference has no output for object {obj_idx} on frame {frame}")


def _check_frame(session, state, frame: int, obj_ids, video_logits, our_masks) -> None:
    for row, obj_id in enumerate(obj_ids):
        obj_idx = state["obj_id_to_idx"][obj_id]
        want = _ref_output(state, obj_idx, frame)
        assert_parity(session._low_res_logits(obj_id, frame), want["pred_masks"], ulps=CHAIN_ULPS)
        if "object_score_logits" in want:
            ours = torch.tensor([session._tracks[obj_id].outputs[frame].score])
            assert_parity(ours, want["object_score_logits"].reshape(1), ulps=CHAIN_ULPS)
        logits = video_logits[row, 0]
        # Where a logit is within the tolerance of 0, rounding may decide either way.
        _, undecided = tolerance(logits, ulps=CHAIN_ULPS)
        logits = logits.numpy()
        decided = np.abs(logits) > undecided
        np.testing.assert_array_equal(our_masks[obj_id][decided], (logits > 0)[decided])


def _check_prompt(session, state, result, ref_return) -> None:
    frame, obj_ids, video_logits = ref_return
    row = list(obj_ids).index(result.obj_id)
    masks = {result.obj_id: result.mask}
    _check_frame(session, state, frame, [result.obj_id], video_logits[row : row + 1], masks)


def _propagate_both(session, state, *, start, reverse: bool) -> list[int]:
    direction = "backward" if reverse else "forward"
    ours = list(session.propagate(start, direction, mode="full"))
    theirs = list(torch.inference_mode()(lambda: list(ref_propagate(state, start, reverse)))())
    assert [r.frame for r in ours] == [f for f, _, _ in theirs]
    for result, (frame, obj_ids, video_logits) in zip(ours, theirs, strict=True):
        masks = {o: r.mask for o, r in result.objects.items()}
        assert set(masks) == set(obj_ids)
        _check_frame(session, state, frame, obj_ids, video_logits, masks)
    return [r.frame for r in ours]


def ref_propagate(state, start, reverse):
    predictor = state["_predictor"]
    yield from predictor.propagate_in_video(state, start_frame_idx=start, reverse=reverse)


def _pair(setup):
    state = _reference_state(setup)
    state["_predictor"] = setup[0]
    return _session(setup), state, setup[0]


def _click(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(points=np.array([[x, y]]), labels=np.array([label]))


def test_one_click(setup) -> None:
    session, state, ref = _pair(setup)
    result = session.add_prompt(0, 1, _click(25, 40))
    _check_prompt(session, state, result, ref.add_new_points_or_box(state, 0, 1, [[25, 40]], [1]))
    assert _propagate_both(session, state, start=0, reverse=False) == list(range(N))


def test_box(setup) -> None:
    session, state, ref = _pair(setup)
    box = np.array([68.0, 60.0, 102.0, 86.0])
    result = session.add_prompt(1, 7, Prompt(box=box))
    _check_prompt(session, state, result, ref.add_new_points_or_box(state, 1, 7, box=box))
    _propagate_both(session, state, start=1, reverse=False)
    _propagate_both(session, state, start=1, reverse=True)


def test_mask_prompt(setup) -> None:
    session, state, ref = _pair(setup)
    mask = np.zeros((H, W), bool)
    mask[8:32, 84:106] = True
    result = session.add_prompt(0, 3, Prompt(mask=mask))
    _check_prompt(session, state, result, ref.add_new_mask(state, 0, 3, mask))
    _propagate_both(session, state, start=0, reverse=False)


def test_three_objects_one_added_after_tracking(setup) -> None:
    session, state, ref = _pair(setup)
    r1 = session.add_prompt(0, 1, _click(25, 40))
    _check_prompt(session, state, r1, ref.add_new_points_or_box(state, 0, 1, [[25, 40]], [1]))
    box = np.array([62.0, 62.0, 96.0, 88.0])
    r2 = session.add_prompt(2, 2, Prompt(box=box))
    _check_prompt(session, state, r2, ref.add_new_points_or_box(state, 2, 2, box=box))
    _propagate_both(session, state, start=2, reverse=False)
    # A third object after tracking ran: nothing is reset, on either side.
    points, labels = np.array([[87.0, 20.0], [70.0, 50.0]]), np.array([1, 0])
    r3 = session.add_prompt(4, 3, Prompt(points=points, labels=labels))
    _check_prompt(session, state, r3, ref.add_new_points_or_box(state, 4, 3, points, labels))
    _propagate_both(session, state, start=4, reverse=False)
    _propagate_both(session, state, start=4, reverse=True)
    assert session.object_ids == [1, 2, 3]


def test_negative_correction_then_full_repropagation(setup) -> None:
    session, state, ref = _pair(setup)
    session.add_prompt(0, 1, _click(25, 40))
    ref.add_new_points_or_box(state, 0, 1, [[25, 40]], [1])
    _propagate_both(session, state, start=0, reverse=False)
    result = session.add_prompt(5, 1, _click(50, 40, label=0), clear_old=False)
    want = ref.add_new_points_or_box(state, 5, 1, [[50, 40]], [0], clear_old_points=False)
    _check_prompt(session, state, result, want)
    _propagate_both(session, state, start=0, reverse=False)
    assert session.keyframes(1) == [0, 5]
    # Removing the correction again downgrades frame 5 on both sides.
    session.clear_prompts(5, 1)
    ref.clear_all_prompts_in_frame(state, 5, 1)
    _propagate_both(session, state, start=0, reverse=False)


def test_backward_from_middle_frame(setup) -> None:
    session, state, ref = _pair(setup)
    result = session.add_prompt(4, 1, _click(45, 40))
    _check_prompt(session, state, result, ref.add_new_points_or_box(state, 4, 1, [[45, 40]], [1]))
    assert _propagate_both(session, state, start=4, reverse=True) == [4, 3, 2, 1, 0]
    _propagate_both(session, state, start=4, reverse=False)
