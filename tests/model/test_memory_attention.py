import functools

import pytest
import torch
from oracle import build_reference
from sam2.modeling.position_encoding import apply_rotary_enc, compute_axial_cis
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam2.config import MemoryAttentionConfig, get_config
from model.sam2.memory_attention import AxialRotaryEncoding, MemoryAttention

VARIANTS = ("sam2.1-tiny", "sam2-large")


@functools.cache
def _pair(name: str) -> tuple[torch.nn.Module, MemoryAttention]:
    """(reference memory attention, ours with the same weights), built once per variant."""
    ref = build_reference(name, image_size=256).memory_attention
    ours = MemoryAttention(cfg=get_config(name).memory_attention).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@pytest.fixture(scope="module", params=VARIANTS)
def pair(request):
    return _pair(request.param)


def _inputs(*, side: int, frames: int, ptrs: int, batch: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    hw, m = side * side, frames * side * side + ptrs
    return {
        "curr": torch.randn(hw, batch, 256, generator=gen),
        "curr_pos": torch.randn(hw, batch, 256, generator=gen),
        "memory": torch.randn(m, batch, 64, generator=gen),
        "memory_pos": torch.randn(m, batch, 64, generator=gen),
        "num_obj_ptr_tokens": ptrs,
    }


def _check_parity(ref, ours, inputs: dict) -> None:
    with torch.no_grad():
        expected = ref(**inputs)
        actual = ours(**inputs)
    assert actual.shape == inputs["curr"].shape
    assert_parity(actual, expected)


def test_state_dict_keys_and_shapes_match_reference(pair):
    ref, ours = pair
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert all(our_sd[k].shape == ref_sd[k].shape for k in ref_sd)


# 1, 3 and 7 memory frames, with and without object pointers, one and several objects.
@pytest.mark.parametrize(
    ("frames", "ptrs", "batch"),
    [(1, 0, 1), (1, 4, 3), (3, 4, 1), (3, 0, 3), (7, 4, 2), (7, 16, 1), (7, 0, 1)],
)
def test_matches_reference_16x16(pair, frames, ptrs, batch):
    ref, ours = pair
    _check_parity(ref, ours, _inputs(side=16, frames=frames, ptrs=ptrs, batch=batch, seed=frames))


@pytest.mark.slow
def test_matches_reference_64x64_then_back_to_16x16():
    # The full-resolution grid (1024 px input), then a smaller one, so a stale
    # cached table for the wrong grid would show up. One variant suffices: the
    # memory attention config is the same in all of them.
    ref, ours = _pair("sam2.1-tiny")
    _check_parity(ref, ours, _inputs(side=64, frames=1, ptrs=4, batch=1))
    _check_parity(ref, ours, _inputs(side=16, frames=2, ptrs=4, batch=2))


def test_bf16_autocast_close_to_fp32():
    _, ours = _pair("sam2.1-tiny")
    inputs = _inputs(side=8, frames=3, ptrs=4, batch=2)
    with torch.no_grad():
        expected = ours(**inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            actual = ours(**inputs)
    assert torch.isfinite(actual).all()
    # The output is LayerNorm-ed (unit scale). Measured on CPU: max 0.010, mean 0.002;
    # the bounds leave room for other CPUs' bf16 kernels yet are far below the ~0.1
    # error of a wrong rotary encoding. A zero error would mean autocast did nothing.
    err = (actual.float() - expected).abs()
    assert 0 < err.max().item() <= 0.05
    assert err.mean().item() <= 0.01


def test_rope_matches_reference_rotation():
    rope = AxialRotaryEncoding(head_dim=32, theta=10000.0)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 1, 36, 32, generator=gen)
    k = torch.randn(2, 1, 3 * 36, 32, generator=gen)
    cis = compute_axial_cis(dim=32, end_x=6, end_y=6, theta=10000.0)
    ref_q, ref_k = apply_rotary_enc(q, k, freqs_cis=cis, repeat_freqs_k=True)
    phases = rope.phases(6, 6, q.device)
    assert_parity(rope.rotate(q, phases), ref_q, name="q")
    assert_parity(rope.rotate(k, phases), ref_k, name="k")
    # Low-precision inputs are rotated in float32 and come back in their own dtype.
    q_bf16 = rope.rotate(q.bfloat16(), phases)
    assert q_bf16.dtype == torch.bfloat16
    assert_parity(q_bf16, ref_q, ulps=BF16_ULPS, eps=BF16_EPS)


def test_rope_phases_are_cached_and_usable_outside_inference_mode():
    rope = AxialRotaryEncoding(head_dim=16)
    with torch.inference_mode():
        phases = rope.phases(4, 4, torch.device("cpu"))
    assert rope.phases(4, 4, torch.device("cpu")) is phases
    assert not phases.is_inference()
    assert phases.shape == (16, 8) and phases.dtype == torch.complex64
    # Position (0, 0) is not rotated; other positions are pure rotations.
    x = torch.randn(16, 16, requires_grad=True)
    out = rope.rotate(x, phases)
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    out.sum().backward()
    assert x.grad is not None


def test_pointer_tokens_are_not_rotated():
    # Permuting the pointer tokens must not change the output (they carry no position),
    # while moving spatial memory tokens must.
    torch.manual_seed(0)
    attn = MemoryAttention(cfg=MemoryAttentionConfig(num_layers=1, dim_feedforward=32)).eval()
    inputs = _inputs(side=4, frames=1, ptrs=4, batch=1)
    with torch.no_grad():
        base = attn(**inputs)
        perm = torch.tensor([*range(16), 19, 18, 17, 16])
        swapped = dict(inputs, memory=inputs["memory"][perm], memory_pos=inputs["memory_pos"][perm])
        assert_parity(attn(**swapped), base)
        moved = torch.tensor([1, 0, *range(2, 20)])
        spatial = dict(
            inputs, memory=inputs["memory"][moved], memory_pos=inputs["memory_pos"][moved]
        )
        assert (attn(**spatial) - base).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("hw", "m", "ptrs", "batch_mem"),
    [
        (15, 15, 0, 1),  # not a square grid
        (16, 20, 0, 1),  # keys are not whole frames
        (16, 20, 21, 1),  # more pointer tokens than keys
        (16, 16, 0, 2),  # batch mismatch
    ],
)
def test_rejects_bad_inputs(hw, m, ptrs, batch_mem):
    attn = MemoryAttention(cfg=MemoryAttentionConfig(num_layers=1, dim_feedforward=32))
    with pytest.raises(ValueError):
        attn(
            curr=torch.zeros(hw, 1, 256),
            curr_pos=torch.zeros(hw, 1, 256),
            memory=torch.zeros(m, batch_mem, 64),
            memory_pos=torch.zeros(m, batch_mem, 64),
            num_obj_ptr_tokens=ptrs,
        )
