"""Fast mode (bf16) against the reference run under the same bf16 autocast.

The reference computes in bf16 on GPUs under `torch.autocast(dtype=torch.bfloat16)`;
running it under `torch.autocast("cpu", dtype=torch.bfloat16)` gives the same maths on
CPU, and that is what our fast mode is compared with. Our attention takes its own bf16
route on CPU (`model.kernels.bf16_attention`), so the two sides round at different places:
the reference's fused attention keeps its logits in float32, ours rounds them to bf16
once; each side rounds every layer's output to bf16 (eps 2**-7). The tolerance is
therefore the bf16 one of `tests/tolerance.py`: BF16_ULPS (12) bf16 roundings of the
tensor's scale, which covers a few roundings on either side per component with the
margin the module describes, and still fails on any real bug (a wrong weight, a
missing term), whose errors are of order 1 relative to the values.

To test the route itself at the small sizes that keep these tests fast, its size
threshold is lowered so that every bf16 attention on CPU takes it, and the tests
check that it was taken.
"""

from __future__ import annotations

import functools

import pytest
import torch
from oracle import build_reference
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

import model.kernels.bf16_attention as bf16_attention
from model.sam2.build import build_model
from model.sam2.config import get_config
from model.sam2.memory_attention import MemoryAttention
from model.sam2.model import Memory, PointInputs

NAME, SIZE = "sam2.1-tiny", 256


def _bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _count_route(monkeypatch, *, amx: bool) -> list[tuple[int, ...]]:
    """Sends every bf16 CPU attention down the bf16 route, or with `amx` to torch's fused
    kernel as on a CPU with AMX; returns the query shapes the bf16 route ran on."""
    calls: list[tuple[int, ...]] = []
    original = bf16_attention.chunked_bf16_attention

    def counting(q, k, v, **kwargs):
        calls.append(tuple(q.shape))
        # A small chunk so that the chunking is exercised too.
        return original(q, k, v, chunk_elements=1 << 16)

    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: amx)
    monkeypatch.setattr(bf16_attention, "_MIN_PAIRS", 0)
    monkeypatch.setattr(bf16_attention, "chunked_bf16_attention", counting)
    return calls


@pytest.fixture
def route_calls(monkeypatch) -> list[tuple[int, ...]]:
    """Every bf16 CPU attention takes the route; the query shapes it ran on."""
    return _count_route(monkeypatch, amx=False)


@pytest.fixture
def fused_amx(monkeypatch) -> list[tuple[int, ...]]:
    """As on a CPU with AMX: bf16 attention goes to torch's fused kernel, values projected
    first; the query shapes the bf16 route ran on (none must)."""
    return _count_route(monkeypatch, amx=True)


@functools.cache
def _memory_attention_pair() -> tuple[torch.nn.Module, MemoryAttention]:
    ref = build_reference(NAME, image_size=SIZE).memory_attention
    ours = MemoryAttention(cfg=get_config(NAME).memory_attention).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@functools.cache
def _model_pair():
    ref = build_reference(NAME, image_size=SIZE, video=True)
    ours = build_model(get_config(NAME, image_size=SIZE)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert_parity(actual.float(), expected.float(), ulps=BF16_ULPS, eps=BF16_EPS, name=name)


def _memory_attention_inputs(frames: int, ptrs: int, batch: int, *, seed: int) -> dict:
    """Memory attention's inputs on a 16 x 16 grid: `frames` memories and `ptrs` pointers."""
    gen = torch.Generator().manual_seed(seed)
    hw, m = 16 * 16, frames * 16 * 16 + ptrs
    return {
        "curr": torch.randn(hw, batch, 256, generator=gen),
        "curr_pos": torch.randn(hw, batch, 256, generator=gen),
        "memory": torch.randn(m, batch, 64, generator=gen),
        "memory_pos": torch.randn(m, batch, 64, generator=gen),
        "num_obj_ptr_tokens": ptrs,
    }


@pytest.mark.parametrize(("frames", "ptrs", "batch"), [(1, 0, 1), (3, 4, 2), (7, 16, 1)])
def test_memory_attention_matches_reference_under_bf16(route_calls, frames, ptrs, batch):
    ref, ours = _memory_attention_pair()
    inputs = _memory_attention_inputs(frames, ptrs, batch, seed=frames)
    with torch.inference_mode(), _bf16():
        expected = ref(**inputs)
        actual = ours(**inputs)
    # Self- and cross-attention of every layer took the route.
    assert len(route_calls) == 2 * len(ours.layers)
    _close(actual, expected, "memory attention")


@pytest.mark.parametrize(("frames", "ptrs", "batch"), [(3, 4, 2), (7, 16, 1)])
def test_memory_attention_with_long_rows_in_bf16_blocks_matches_reference(
    route_calls, monkeypatch, frames, ptrs, batch
):
    """Cross-attention over long rows (28,736 keys at 1024) takes the bf16 blocks of
    `model.kernels.blocked_attention`; rows of more than 300 keys count as long here."""
    import model.kernels.blocked_attention as blocked

    blocked_calls: list[int] = []
    original = blocked.blocked_attention

    def counting(q, k, v):
        blocked_calls.append(k.shape[-2])
        return original(q, k, v, block_elements=1 << 14)  # several key blocks

    monkeypatch.setattr(bf16_attention, "BLOCKED_ROWS", 300)
    monkeypatch.setattr(blocked, "blocked_attention", counting)
    ref, ours = _memory_attention_pair()
    inputs = _memory_attention_inputs(frames, ptrs, batch, seed=frames + 50)
    with torch.inference_mode(), _bf16():
        expected = ref(**inputs)
        actual = ours(**inputs)
    keys = frames * 16 * 16 + ptrs
    assert blocked_calls == [keys] * len(ours.layers)  # the self-attention's 256 stay chunked
    assert len(route_calls) == len(ours.layers)
    _close(actual, expected, "memory attention")


@pytest.mark.parametrize(("frames", "ptrs"), [(1, 0), (7, 16)])
def test_memory_attention_on_the_fused_amx_kernel_matches_reference(fused_amx, frames, ptrs):
    ref, ours = _memory_attention_pair()
    inputs = _memory_attention_inputs(frames, ptrs, 1, seed=frames + 100)
    with torch.inference_mode(), _bf16():
        expected = ref(**inputs)
        actual = ours(**inputs)
    assert fused_amx == []
    _close(actual, expected, "memory attention")


def _memories(ours, b: int, seed: int):
    """Conditioning frame 0 and recent frames 4, 5 as the session holds them (bf16 memories)."""
    gen = torch.Generator().manual_seed(seed)
    s, mem, c = ours.cfg.feat_size, ours.cfg.mem_dim, ours.cfg.hidden_dim
    pos = ours.memory_encoder.position_encoding(torch.zeros(b, mem, s, s))
    out = {}
    for t in (0, 4, 5):
        feats = torch.randn(b, mem, s, s, generator=gen).to(torch.bfloat16)
        out[t] = {"maskmem_features": feats, "maskmem_pos_enc": [pos], "obj_ptr": torch.randn(b, c)}
    return out


def _ref_inputs(feats):
    levels = [*feats.high_res, feats.vision]
    pos = [torch.zeros_like(x) for x in feats.high_res] + [feats.vision_pos]
    flat = [x.flatten(2).permute(2, 0, 1) for x in levels]
    flat_pos = [x.flatten(2).permute(2, 0, 1) for x in pos]
    return flat, flat_pos, [tuple(x.shape[-2:]) for x in levels]


@pytest.mark.parametrize("case", ["init_click", "tracking"])
def test_track_step_matches_reference_under_bf16(route_calls, case: str) -> None:
    ref, ours = _model_pair()
    image = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    init = case == "init_click"
    frame = 0 if init else 6
    points = PointInputs(
        coords=torch.tensor([[[100.0, 120.0]]]), labels=torch.tensor([[1]], dtype=torch.int32)
    )
    stored = _memories(ours, 1, seed=9)
    output_dict = {
        "cond_frame_outputs": {0: stored[0]},
        "non_cond_frame_outputs": {4: stored[4], 5: stored[5]},
    }
    plan = ours.plan_memories(frame, [0], num_frames=10)
    memories = [
        (p, Memory(features=stored[t]["maskmem_features"], obj_ptr=stored[t]["obj_ptr"]))
        for p, t in [(0, 0), *((p, t) for p, t in plan.recent if t in stored)]
    ]
    pointers = [
        (d, stored[t]["obj_ptr"])
        for d, t in [*plan.pointer_cond, *plan.pointer_recent]
        if t in stored
    ]
    with torch.inference_mode(), _bf16():
        feats = ours.encode_image(image)
        mine = ours.track_step(
            feats,
            is_init_cond_frame=init,
            points=points if init else None,
            memories=[] if init else memories,
            pointers=[] if init else pointers,
            max_pointers=plan.max_pointers,
        )
        flat, flat_pos, sizes = _ref_inputs(feats)
        want = ref.track_step(
            frame_idx=frame,
            is_init_cond_frame=init,
            current_vision_feats=flat,
            current_vision_pos_embeds=flat_pos,
            feat_sizes=sizes,
            point_inputs={"point_coords": points.coords, "point_labels": points.labels}
            if init
            else None,
            mask_inputs=None,
            output_dict=output_dict,
            num_frames=10,
        )
        # A clicked frame's memory is encoded from the binarised mask: a pixel whose logit
        # is within rounding of 0 may fall either way, a discrete change no tolerance on
        # values describes. So the memory is checked from the reference's own mask.
        memory, _ = ours.encode_memory(
            feats.vision,
            want["pred_masks_high_res"],
            want["object_score_logits"],
            is_mask_from_pts=init,
        )
    # The image encoder's global blocks always take the route; memory attention when tracking.
    assert route_calls
    _close(mine.sam.low_res_masks, want["pred_masks"], "low_res_masks")
    _close(mine.sam.high_res_masks, want["pred_masks_high_res"], "high_res_masks")
    _close(mine.sam.obj_ptr, want["obj_ptr"], "obj_ptr")
    _close(mine.sam.object_score_logits, want["object_score_logits"], "score")
    _close(memory, want["maskmem_features"], "memory")
    assert mine.memory_features.shape == memory.shape
