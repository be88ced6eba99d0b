"""Layer 0's self-attention runs once for a batch of objects on one frame, with equal results."""

from __future__ import annotations

import pytest
import torch
from tolerance import assert_parity

from model.sam2.config import get_config
from model.sam2.memory_attention import MemoryAttention


def test_expanded_frame_tokens_share_the_first_self_attention() -> None:
    torch.manual_seed(0)
    cfg = get_config("sam2.1-tiny", image_size=128).memory_attention
    attention = MemoryAttention(cfg=cfg).eval()
    hw, b, c, m = 64, 3, cfg.d_model, cfg.kv_in_dim
    curr, curr_pos = torch.randn(hw, 1, c), torch.randn(hw, 1, c)
    memory, memory_pos = torch.randn(2 * hw + 4, b, m), torch.randn(2 * hw + 4, b, m)
    calls: list[int] = []
    attention.layers[0].self_attn.register_forward_pre_hook(
        lambda _m, args: calls.append(args[0].shape[0])
    )
    with torch.inference_mode():
        shared = attention(
            curr=curr.expand(hw, b, c),
            curr_pos=curr_pos.expand(hw, b, c),
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=4,
        )
        # The same tokens as a real (copied) batch take the ordinary path.
        copied = attention(
            curr=curr.repeat(1, b, 1),
            curr_pos=curr_pos.repeat(1, b, 1),
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=4,
        )
    assert calls == [1, b]
    assert_parity(shared, copied)
    for i in range(b):  # and each object equals running it alone
        with torch.inference_mode():
            alone = attention(
                curr=curr,
                curr_pos=curr_pos,
                memory=memory[:, i : i + 1],
                memory_pos=memory_pos[:, i : i + 1],
                num_obj_ptr_tokens=4,
            )
        assert_parity(shared[:, i : i + 1], alone)


def test_a_precomputed_first_layer_gives_each_call_its_own_result_bit_for_bit() -> None:
    """Objects of one frame run one per call (CPU) with layer 0's self-attention computed
    once and passed in: each call equals the call that computes it itself."""
    torch.manual_seed(1)
    cfg = get_config("sam2.1-tiny", image_size=128).memory_attention
    attention = MemoryAttention(cfg=cfg).eval()
    hw, c, m = 64, cfg.d_model, cfg.kv_in_dim
    curr, curr_pos = torch.randn(hw, 1, c), torch.randn(hw, 1, c)
    calls: list[int] = []
    attention.layers[0].self_attn.register_forward_pre_hook(lambda *_: calls.append(1))
    with torch.inference_mode():
        first = attention.first_self_attention(curr, curr_pos)
        for seed in range(3):
            gen = torch.Generator().manual_seed(seed)
            memory, memory_pos = (torch.randn(2 * hw + 4, 1, m, generator=gen) for _ in "ab")
            kwargs = dict(memory=memory, memory_pos=memory_pos, num_obj_ptr_tokens=4)
            given = attention(curr=curr, curr_pos=curr_pos, first_layer=first, **kwargs)
            before = len(calls)
            alone = attention(curr=curr, curr_pos=curr_pos, **kwargs)
            assert len(calls) == before + 1
            assert torch.equal(given, alone)
        assert len(calls) == 1 + 3  # once shared, then once per unshared call
        with pytest.raises(ValueError, match="first_layer"):
            attention(curr=curr, curr_pos=curr_pos, first_layer=first[:, :-1], **kwargs)
