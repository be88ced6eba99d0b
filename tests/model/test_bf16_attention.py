"""The bf16 attention route: same maths as torch's attention, taken only where it should be."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

import model.kernels.bf16_attention as bf16_attention
from model.kernels.attention import attention, narrow_values_pay
from model.kernels.bf16_attention import chunked_bf16_attention, uses_bf16_route


def _qkv(b: int, heads: int, nq: int, nk: int, d: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(nq + nk)
    return tuple(torch.randn(b, heads, n, d, generator=gen).to(dtype) for n in (nq, nk, nk))


@pytest.mark.parametrize(
    ("b", "heads", "nq", "nk", "d"), [(1, 1, 64, 300, 256), (2, 4, 50, 49, 96)]
)
@pytest.mark.parametrize("chunk_elements", [1 << 25, 1000])
def test_route_matches_float32_attention_within_bf16(b, heads, nq, nk, d, chunk_elements):
    q, k, v = _qkv(b, heads, nq, nk, d, torch.bfloat16)
    # float32 attention of the same bf16-rounded inputs: what the route approximates.
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    actual = chunked_bf16_attention(q, k, v, chunk_elements=chunk_elements)
    assert actual.dtype == torch.bfloat16 and actual.shape == expected.shape
    assert_parity(actual, expected, ulps=BF16_ULPS, eps=BF16_EPS)


def test_chunks_do_not_change_the_result():
    q, k, v = _qkv(2, 2, 40, 70, 32, torch.bfloat16)
    whole = chunked_bf16_attention(q, k, v)
    # 2 * 2 * 70 weights per query row: chunks of 3 rows, the last one ragged.
    chunked = chunked_bf16_attention(q, k, v, chunk_elements=3 * 2 * 2 * 70)
    assert_parity(chunked, whole, ulps=1, eps=BF16_EPS)


def test_float32_small_and_long_narrow_attention_stay_on_torch_sdpa():
    q, k, v = _qkv(1, 2, 64, 64, 32)
    assert not uses_bf16_route(q, k, v)
    assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    # The decoder's tokens attending to each other: too small to pay.
    small = _qkv(1, 8, 7, 7, 32, torch.bfloat16)
    assert not uses_bf16_route(*small)
    assert torch.equal(attention(*small), F.scaled_dot_product_attention(*small))


@pytest.fixture
def no_amx(monkeypatch):
    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: False)


def test_memory_attention_windows_and_global_blocks_take_the_route(no_amx):
    # Memory attention, the encoder's windows (many small ones a call, pooled queries
    # too), its global blocks (long rows of head dim 96), the decoder's image tokens
    # attending to its few tokens.
    for shape in (
        (1, 1, 64, 4096, 256),
        (16, 1, 64, 64, 96),
        (64, 2, 16, 64, 96),
        (1, 4, 16, 4096, 96),
        (1, 8, 4096, 7, 16),
    ):
        q, k, v = _qkv(*shape, torch.bfloat16)
        assert uses_bf16_route(q, k, v), shape
    q, k, v = _qkv(1, 1, 256, 1024, 16, torch.bfloat16)
    assert torch.equal(attention(q, k, v), chunked_bf16_attention(q, k, v))


def test_bad_chunk_size_is_refused():
    q, k, v = _qkv(1, 1, 4, 4, 8, torch.bfloat16)
    with pytest.raises(ValueError, match="chunk_elements"):
        chunked_bf16_attention(q, k, v, chunk_elements=0)


def test_route_broadcasts_leading_dims_like_sdpa():
    q, _, _ = _qkv(2, 3, 30, 40, 16, torch.bfloat16)
    _, k, v = _qkv(1, 3, 30, 40, 16, torch.bfloat16)
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    actual = chunked_bf16_attention(q, k, v, chunk_elements=500)
    assert actual.shape == (2, 3, 30, 16)
    assert_parity(actual, expected, ulps=BF16_ULPS, eps=BF16_EPS)


def test_with_amx_bf16_goes_to_the_fused_kernel_with_projected_values(monkeypatch):
    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: True)
    q, k, v = _qkv(1, 1, 64, 4096, 256, torch.bfloat16)
    assert not uses_bf16_route(q, k, v)
    assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    # The fused kernel takes narrow values slowly: memory attention projects them first.
    assert not narrow_values_pay(q)
    assert narrow_values_pay(q.float())


def test_without_amx_narrow_values_pay_on_cpu_in_either_precision(no_amx):
    q = torch.zeros(1, 1, 4, 8, dtype=torch.bfloat16)
    assert narrow_values_pay(q) and narrow_values_pay(q.float())


def test_amx_probe_answers_a_bool():
    bf16_attention.fused_kernel_has_amx.cache_clear()
    assert isinstance(bf16_attention.fused_kernel_has_amx(), bool)
