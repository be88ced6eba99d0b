"""Scaled dot-product attention with a bf16 route for CPUs.

torch's fused attention on CPU computes bf16 inputs no faster than float32 (measured on
an AVX512-BF16 CPU: 0.69 s either way for 4096 queries over 28,736 keys of dim 256),
while a plain bf16 matmul of the same shape is about twice as fast as float32 there. So
on CPU, bf16 attention of large enough size runs as two bf16 matmuls around a softmax:

    weights = softmax((q * scale) @ k^T)   # bf16 products, float32 accumulation
    out = weights @ v                      # ditto

torch's bf16 softmax reads bf16, computes in float32 and rounds once to bf16, which
is four times faster than asking it for a float32 result and casting. The queries are
taken in chunks so the weight matrix stays within `_CHUNK_ELEMENTS` at any time
(4096 x 28,736 weights are 235 MB in bf16; a chunk is at most 64 MB).

Where the route pays was measured per attention of SAM 2.1 tiny at 1024 (one thread,
CPU time, bf16 route against float32 SDPA): memory attention (head dim 256, 4096 and
28,736 keys) 1.5x; the image encoder's windows (64 to 196 keys) 1.6x to 1.9x; tiny
attentions (the decoder's 7 tokens to each other) lose to the fused kernel's single call.
The image encoder's global blocks (head dim 96, 4096 keys) were once left out (0.94x),
but that was measured without `model.kernels.allocator`, when each 64 MB chunk of weights came
as fresh pages from the kernel. With it, on a 2-core AMD EPYC (Zen 5, 2 threads), one
global block of Hiera tiny takes 50 ms on this route, against 91 ms in float32 blocks on
oneDNN (`model.kernels.blocked_attention`) and 140 ms in torch's bf16 kernel, and a fast-mode
image encoding 542 ms against 644 (medians of 6, interleaved). `model.kernels.attention` picks
the route.

All of this holds where the CPU has no AMX tiles. Where it has them, torch's fused kernel
packs bf16 for AMX and wins (2-core Xeon with AMX-BF16, torch 2.13, 2 threads): memory
attention's cross-attention 106 ms against this route's 283 ms, its self-attention 14
against 38 ms, the image encoder's last-stage global blocks 4.4 against 9.1 ms, its
windows within 10% either way. There the route is not taken (`fused_kernel_has_amx`).
"""

from __future__ import annotations

import functools
import math

import torch

# Attention-weight elements per query chunk: 32 Mi bf16 values, 64 MB.
_CHUNK_ELEMENTS = 1 << 25
# Below this many query x key pairs in all (batch x heads x queries x keys) the fused
# kernel's one call wins: the decoder's 7 tokens attending to each other (392 pairs,
# 17 against 57 us). Counted over the batch, not per head: Hiera's windows are 1,024 small
# attentions a call (16 queries over 64 keys per window and head), which the fused
# kernel computes at a few tens of GFLOP/s (11 ms against this route's 4.8 ms).
_MIN_PAIRS = 1 << 16
# Rows of more keys than this go to `model.kernels.blocked_attention`'s bf16 blocks instead of
# this route's chunks: memory attention's cross-attention (28,736 keys at 1024 with 7
# memories), 120 against 128 ms a layer alone, 632 against 680 ms for the whole memory
# attention (2-core AMD EPYC Zen 5, medians of 7). At 4,096 keys (its self-attention,
# Hiera's global blocks) the two are within 10% either way.
BLOCKED_ROWS = 8192


@functools.cache
def fused_kernel_has_amx() -> bool:
    """Whether torch's fused CPU attention runs bf16 on AMX tiles here (it does wherever
    the CPU has them and the kernel lets torch use them), so that it beats this route."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


def uses_bf16_route(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether `model.kernels.attention.attention` takes the chunked bf16 route for these inputs."""
    return (
        q.device.type == "cpu"
        and q.dtype == k.dtype == v.dtype == torch.bfloat16
        and not fused_kernel_has_amx()
        and _pairs(q, k) >= _MIN_PAIRS
    )


def rows_take_blocks(k: torch.Tensor) -> bool:
    """Whether bf16 attention over keys `k` that takes this route computes in
    `model.kernels.blocked_attention`'s blocks (long rows) rather than this module's chunks."""
    return k.shape[-2] > BLOCKED_ROWS


def _pairs(q: torch.Tensor, k: torch.Tensor) -> int:
    """Query x key pairs over all (batch, head) slices."""
    return math.prod(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])) * q.shape[-2] * k.shape[-2]


def chunked_bf16_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, chunk_elements: int = _CHUNK_ELEMENTS
) -> torch.Tensor:
    """The bf16 route: chunks of queries, each two bf16 matmuls around a softmax."""
    if chunk_elements <= 0:
        raise ValueError(f"chunk_elements must be positive, got {chunk_elements}")
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    num_q, num_k = q.shape[-2], k.shape[-2]
    # (batch * heads, N, d): a 3D bmm reads the transposed keys in place, where a 4D
    # matmul copies them for every chunk (11% of the q @ k^T time, measured).
    q, k, v = (x.expand(*lead, *x.shape[-2:]).reshape(-1, *x.shape[-2:]) for x in (q, k, v))
    chunk = max(1, chunk_elements // (q.shape[0] * num_k))
    q = q * q.shape[-1] ** -0.5
    k_t = k.transpose(1, 2)  # (BH, d, Nk)
    outs = []
    for start in range(0, num_q, chunk):
        weights = torch.softmax(torch.bmm(q[:, start : start + chunk], k_t), dim=-1)  # (BH, c, Nk)
        outs.append(torch.bmm(weights, v))  # (BH, c, dv)
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return out.reshape(*lead, num_q, out.shape[-1])
