"""The float32 blocked route for narrow values, and memory attention's value reordering:
the same maths as torch's attention in another order, taken only where it should be."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

import model.kernels.bf16_attention as bf16_attention
from model.kernels.attention import attention
from model.kernels.blocked_attention import blocked_attention, uses_blocked_route
from model.sam2.memory_attention import AxialRotaryEncoding, RoPEAttention


def _qkv(b: int, heads: int, nq: int, nk: int, d: int, dv: int, scale: float = 1.0):
    gen = torch.Generator().manual_seed(nq + nk + dv)
    q = torch.randn(b, heads, nq, d, generator=gen) * scale
    k = torch.randn(b, heads, nk, d, generator=gen)
    return q, k, torch.randn(b, heads, nk, dv, generator=gen)


@pytest.mark.parametrize(
    ("b", "heads", "nq", "nk", "d", "dv"), [(1, 1, 256, 1808, 256, 64), (2, 3, 70, 333, 32, 8)]
)
@pytest.mark.parametrize("block_elements", [1 << 22, 4096, 1])
@pytest.mark.parametrize("scale", [1.0, 8.0])  # 8: peaked rows, where a late block's max wins
def test_blocks_match_float32_attention(b, heads, nq, nk, d, dv, block_elements, scale, gemm_route):
    q, k, v = _qkv(b, heads, nq, nk, d, dv, scale)
    expected = F.scaled_dot_product_attention(q, k, v)
    actual = blocked_attention(q, k, v, block_elements=block_elements)
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    assert_parity(actual, expected)


def test_broadcast_values_over_heads() -> None:
    q, k, v = _qkv(1, 4, 64, 300, 32, 8)
    shared = v[:, :1]
    assert_parity(
        blocked_attention(q, k, shared), F.scaled_dot_product_attention(q, k, v[:, :1].expand_as(v))
    )


def test_route_taken_only_for_large_float32_cpu_attention(gemm_route) -> None:
    """Over narrow values always; over values as wide as the queries only where the
    products go to oneDNN (torch's fused kernel wins against BLAS products there)."""
    q, k, v = _qkv(1, 1, 256, 1808, 256, 64)
    assert uses_blocked_route(q, k, v)
    assert torch.equal(attention(q, k, v), blocked_attention(q, k, v))
    wide = torch.randn(1, 1, 1808, 256)
    assert uses_blocked_route(q, k, wide) == (gemm_route == "onednn")
    assert_parity(attention(q, k, wide), F.scaled_dot_product_attention(q, k, wide))
    assert not uses_blocked_route(q[..., :4, :], k[..., :8, :], v[..., :8, :])  # tiny
    assert not uses_blocked_route(*(x.bfloat16() for x in (q, k, v)))  # the bf16 route's


def test_rejects_empty_blocks() -> None:
    with pytest.raises(ValueError, match="block_elements"):
        blocked_attention(*_qkv(1, 1, 4, 4, 8, 4), block_elements=0)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("autocast", [False, True])
def test_values_projected_after_the_weights_equal_the_usual_order(
    heads, autocast, monkeypatch
) -> None:
    """RoPEAttention on CPU attends over the raw narrow memories and projects after."""
    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: False)
    torch.manual_seed(heads)
    dim, kv_in = 64, 16
    rope = AxialRotaryEncoding(head_dim=dim // heads)
    module = RoPEAttention(
        embedding_dim=dim, num_heads=heads, rope=rope, kv_in_dim=kv_in, rope_k_repeat=True
    ).eval()
    q = torch.randn(2, 64, dim)
    kv = torch.randn(2, 3 * 64 + 4, kv_in)
    taken: list[bool] = []
    original = module._values_after_weights

    def spy(*args):
        taken.append(original(*args))
        return taken[-1]

    module._values_after_weights = spy
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        reordered = module(q, kv, kv, num_k_exclude_rope=4)
        module._values_after_weights = lambda *_: False
        usual = module(q, kv, kv, num_k_exclude_rope=4)
    assert taken == [True] and reordered.dtype == usual.dtype
    if autocast:
        assert_parity(reordered.float(), usual.float(), ulps=BF16_ULPS, eps=BF16_EPS)
    else:
        assert_parity(reordered, usual)


@pytest.fixture
def running_max_calls(monkeypatch) -> list[int]:
    """Counts the query blocks sent to the running-maximum route."""
    import model.kernels.blocked_attention as blocked

    calls: list[int] = []
    original = blocked._running_max_block

    def spy(q, *args, **kwargs):
        calls.append(q.shape[-2])
        return original(q, *args, **kwargs)

    monkeypatch.setattr(blocked, "_running_max_block", spy)
    return calls


# Scores of std 12: rows' first-block maxima near 35, beyond the unshifted limit.
@pytest.mark.parametrize(("scale", "shifted"), [(1.0, False), (12.0, True)])
def test_one_reference_per_row_without_the_running_maximum(
    scale, shifted, running_max_calls, monkeypatch
) -> None:
    subtracted: list[bool] = []
    original_sub = torch.Tensor.sub_
    q, k, v = _qkv(1, 1, 256, 1808, 64, 16)
    q = q * scale  # scores of std `scale`
    monkeypatch.setattr(
        torch.Tensor, "sub_", lambda t, *a: subtracted.append(True) or original_sub(t, *a)
    )
    actual = blocked_attention(q, k, v, block_elements=256 * 512)
    monkeypatch.undo()
    assert running_max_calls == [] and bool(subtracted) == shifted
    assert_parity(actual, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("late", [90.0, -90.0])
def test_rows_beyond_their_reference_are_computed_again_exactly(
    late, running_max_calls, gemm_route
) -> None:
    """A late key block whose scores exceed the first block's by more than float32 sums
    allow, in some rows: those query blocks take the running maximum; with much lower late
    scores nothing overflows and the single reference stays."""
    from model.kernels.blocked_attention import _QUERY_BLOCK

    q, k, v = _qkv(1, 1, 2 * _QUERY_BLOCK, 1024, 16, 8)
    q = q / q.norm(dim=-1, keepdim=True)
    k = k / k.norm(dim=-1, keepdim=True)
    q[..., 0] = 0
    q[:, :, _QUERY_BLOCK + 5, 0] = 1.0  # the one query that sees the late keys: block 2
    k[:, :, -100:] = 0
    k[:, :, -100:, 0] = late * 4  # scores of `late` for that query (4 = sqrt(d)), 0 else
    actual = blocked_attention(q, k, v, block_elements=32 * 256)
    expected = F.scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(actual).all()
    assert running_max_calls == ([_QUERY_BLOCK] if late > 0 else [])
    assert_parity(actual, expected)


# bf16 blocks: fast mode's attention over long rows (`model.kernels.attention`).


@pytest.mark.parametrize("block_elements", [1 << 22, 4096])
@pytest.mark.parametrize(("scale", "shifted"), [(1.0, False), (12.0, True)])
def test_bf16_blocks_match_float32_attention(
    block_elements, scale, shifted, running_max_calls
) -> None:
    """bf16 products and exponentials with float32 sums, as the chunked bf16 route
    computes them; rows whose scores need shifting are computed again in float32."""
    q, k, v = _qkv(1, 2, 256, 1808, 64, 16, scale)
    q, k, v = (x.bfloat16() for x in (q, k, v))
    actual = blocked_attention(q, k, v, block_elements=block_elements)
    assert actual.dtype == torch.bfloat16 and actual.shape == (1, 2, 256, 16)
    assert running_max_calls == ([256, 256] if shifted else [])
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    assert_parity(actual.float(), expected, ulps=BF16_ULPS, eps=BF16_EPS)


def test_bf16_fallback_computes_float32_even_under_autocast(monkeypatch) -> None:
    import model.kernels.blocked_attention as blocked

    seen: list[tuple[torch.dtype, bool]] = []
    original = blocked._running_max_block

    def spy(q, *args, **kwargs):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return original(q, *args, **kwargs)

    monkeypatch.setattr(blocked, "_running_max_block", spy)
    q, k, v = (x.bfloat16() for x in _qkv(1, 1, 64, 300, 32, 8, 40.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual = blocked_attention(q, k, v)
    assert seen == [(torch.float32, False)]
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    assert_parity(actual.float(), expected, ulps=BF16_ULPS, eps=BF16_EPS)


def test_bf16_long_rows_take_the_blocks(monkeypatch) -> None:
    """Where the bf16 route is taken (no AMX), rows longer than BLOCKED_ROWS go to the
    blocks, shorter ones to the chunks."""
    import model.kernels.blocked_attention as blocked

    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: False)
    calls: list[int] = []
    original = blocked.blocked_attention
    monkeypatch.setattr(
        blocked, "blocked_attention", lambda q, k, v: calls.append(k.shape[-2]) or original(q, k, v)
    )
    long_keys = bf16_attention.BLOCKED_ROWS + 64
    for nk in (long_keys, bf16_attention.BLOCKED_ROWS):
        q, k, v = (x.bfloat16() for x in _qkv(1, 1, 16, nk, 32, 8))
        assert bf16_attention.uses_bf16_route(q, k, v)
        expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        assert_parity(attention(q, k, v).float(), expected, ulps=BF16_ULPS, eps=BF16_EPS)
    assert calls == [long_keys]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_exponentials_are_powers_of_two(dtype, monkeypatch) -> None:
    """The blocks fold log2(e) into the query scale and take exp2 (4x torch's exp on
    float32 CPUs, 1.2x on bf16), never exp; both dtypes still match SDPA."""
    calls: list[str] = []
    for name in ("exp_", "exp2_"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor, name, lambda t, _n=name, _o=original: calls.append(_n) or _o(t)
        )
    q, k, v = (x.to(dtype) for x in _qkv(1, 1, 256, 1808, 64, 16))
    actual = blocked_attention(q, k, v, block_elements=256 * 512)
    monkeypatch.undo()
    assert calls and set(calls) == {"exp2_"}
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    if dtype == torch.float32:
        assert_parity(actual, expected)
    else:
        assert_parity(actual.float(), expected, ulps=BF16_ULPS, eps=BF16_EPS)
