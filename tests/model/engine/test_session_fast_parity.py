"""A short propagation in fast mode (bf16) against the reference under the same bf16 autocast.

The setup is test_session_parity's (SAM 2.1 tiny at image size 256, random weights, a
small synthetic video, every prompted frame a keyframe); the reference runs its
predictor under `torch.autocast("cpu", dtype=torch.bfloat16)`, as it runs bf16 on GPUs,
and our session runs with `precision="fast"`.

Tolerances: each frame chains the image encoder, memory attention over earlier frames'
bf16 memories, the decoder and the memory encoder, and re-enters its own output as a
memory, so the two sides' different bf16 roundings (see tests/model/test_fast_mode.py)
add up over frames. The logits and scores are compared within BF16_CHAIN_ULPS (4x
BF16_ULPS: 37% of the tensor's scale, the chain's depth over the component budget, as
CHAIN_ULPS is 4x COMPONENT_ULPS in float32); the most used on an AMD EPYC with
AVX512-BF16 was 3.4 of it, and errors of a bug are of order 1 of the scale and more.
The masks must agree on every pixel whose reference logit is decided, that is outside
that tolerance of 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import build_reference
from test_session_parity import NAME, OVERRIDES, SIZE, H, N, ShapesVideo, W, ref_propagate
from tolerance import BF16_EPS, BF16_ULPS, assert_parity, tolerance

import model.kernels.bf16_attention as bf16_attention
from model.engine.frames import preprocess_frame
from model.engine.session import Prompt, TrackingSession
from model.sam2.build import build_model
from model.sam2.config import get_config

BF16_CHAIN_ULPS = 4 * BF16_ULPS


def _bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.fixture
def pair(tmp_path_factory):
    from PIL import Image

    ref = build_reference(NAME, image_size=SIZE, video=True, overrides=OVERRIDES, fresh=True)
    ref.fill_hole_area = 0
    ours = build_model(get_config(NAME, image_size=SIZE))
    ours.load_state_dict(ref.state_dict(), strict=True)
    video = ShapesVideo()
    images = torch.cat([preprocess_frame(video[i], SIZE, torch.device("cpu")) for i in range(N)])
    folder = tmp_path_factory.mktemp("frames")
    for i in range(N):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / f"{i}.jpg")
    with torch.inference_mode(), _bf16():
        backbone = {i: ref.forward_image(images[i : i + 1]) for i in range(N)}
    state = ref.init_state(str(folder))
    state["images"] = images
    state["cached_features"] = {i: (images[i : i + 1], backbone[i]) for i in range(N)}
    state["_predictor"] = ref
    session = TrackingSession(ours, ShapesVideo(), device="cpu", fill_hole_area=0, precision="fast")
    return session, state, ref


def _check(session, state, frame: int, obj_ids, video_logits, masks) -> None:
    for row, obj_id in enumerate(obj_ids):
        want = state["output_dict_per_obj"][state["obj_id_to_idx"][obj_id]]
        out = want["cond_frame_outputs"].get(frame) or want["non_cond_frame_outputs"][frame]
        assert_parity(
            session._low_res_logits(obj_id, frame),
            out["pred_masks"].float(),
            ulps=BF16_CHAIN_ULPS,
            eps=BF16_EPS,
            name=f"logits of {obj_id} on {frame}",
        )
        logits = video_logits[row, 0].float()
        _, undecided = tolerance(logits, ulps=BF16_CHAIN_ULPS, eps=BF16_EPS)
        decided = (logits.abs() > undecided).numpy()
        np.testing.assert_array_equal(masks[obj_id][decided], (logits > 0).numpy()[decided])


@pytest.mark.parametrize("amx", [False, True], ids=["bf16 route", "fused kernel (AMX)"])
def test_two_objects_propagate_like_the_reference_in_bf16(pair, monkeypatch, amx) -> None:
    session, state, ref = pair
    # Both CPU routes, whichever this machine has: without AMX, at image size 1024 memory
    # attention takes the bf16 route; at this test's small size it would not, so every
    # bf16 attention is sent down the route here. With AMX, torch's fused kernel.
    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: amx)
    monkeypatch.setattr(bf16_attention, "_MIN_PAIRS", 0)
    click = Prompt(points=np.array([[25.0, 40.0]]), labels=np.array([1]))
    box = np.array([68.0, 60.0, 102.0, 86.0])
    assert session.precision == "fast"
    session.add_prompt(0, 1, click)
    session.add_prompt(0, 2, Prompt(box=box))
    with torch.inference_mode(), _bf16():
        ref.add_new_points_or_box(state, 0, 1, [[25, 40]], [1])
        ref.add_new_points_or_box(state, 0, 2, box=box)
    ours = list(session.propagate(0, "forward", mode="full"))
    with torch.inference_mode(), _bf16():
        theirs = list(ref_propagate(state, 0, False))
    assert [r.frame for r in ours] == [f for f, _, _ in theirs] == list(range(N))
    for result, (frame, obj_ids, video_logits) in zip(ours, theirs, strict=True):
        masks = {o: r.mask for o, r in result.objects.items()}
        assert set(masks) == set(obj_ids) == {1, 2}
        _check(session, state, frame, obj_ids, video_logits, masks)
