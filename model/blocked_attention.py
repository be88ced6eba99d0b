"""Float32 attention over narrow values, in blocks with a running softmax, for CPUs.

Memory attention's cross-attention projects 64-channel memories to 256-channel values
and, with one head, `weights @ (M Wv^T + b)` equals `(weights @ M) Wv^T + b` because each
row of softmax weights sums to one. `model.memory_attention` uses that on CPU: attention
over the raw 64-channel memories, then the value projection on the 4096 outputs. The
weights-times-values product then costs a quarter of its FLOPs (15 instead of 60 GFLOP
per layer for 4096 queries over 7 memory frames at 1024), the same maths in another order.

torch's fused CPU attention does not take values narrower than the queries well (0.87 s
for 4096 queries over 28,736 keys, head dim 256, values of 64 channels, against 0.68 s
with values of 256), so this route computes it as flash attention does, in Python-level
blocks: for a block of queries and a block of keys, one matmul of scores, the running row
maximum, exponentials in place, and one matmul into the accumulated output, rescaled when
the maximum grows. Blocks of 512 queries by about 8,192 keys (a 16 MB score block): half
the parallel regions of 4,096-key blocks, which matters when another process takes a
core (every region ends at a barrier that waits for the descheduled thread). Measured
on 2-core AVX-512 CPUs, 2 threads, dv = 64: on an AMD EPYC 0.48-0.50 s against the fused
kernel's 0.68 s at 256 value channels (the score matmul alone is 0.35 s, its float32
floor); on an Intel Xeon 0.49 s against the fused kernel's 1.0 s (4,096-key blocks 0.53 s),
and with a busy process alongside 0.94 s against 1.39 s (4,096-key blocks 1.0 s). Within
5e-8 of float32 `F.scaled_dot_product_attention` on unit-scale inputs.
"""

from __future__ import annotations

import torch

# Score-block elements per (batch * heads) slice: 512 x 8192 float32 values, 16 MB.
_BLOCK_ELEMENTS = 1 << 22
_QUERY_BLOCK = 512
# Below this many query x key pairs the fused kernel's single call wins.
_MIN_PAIRS = 1 << 16


def uses_blocked_route(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether `model.attention.attention` takes this route: float32 on CPU, values
    narrower than the queries' head dim, and a size where the blocks pay."""
    return (
        q.device.type == "cpu"
        and q.dtype == k.dtype == v.dtype == torch.float32
        and v.shape[-1] < q.shape[-1]
        and q.shape[-2] * k.shape[-2] >= _MIN_PAIRS
    )


def blocked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, block_elements: int = _BLOCK_ELEMENTS
) -> torch.Tensor:
    """Softmax attention scaled by 1 / sqrt(head_dim), without mask or dropout.

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> (..., Nq, dv), leading dims
    broadcast as in `F.scaled_dot_product_attention`.
    """
    if block_elements <= 0:
        raise ValueError(f"block_elements must be positive, got {block_elements}")
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    num_q, num_k = q.shape[-2], k.shape[-2]
    q, k, v = (x.expand(*lead, *x.shape[-2:]).reshape(-1, *x.shape[-2:]) for x in (q, k, v))
    q = q * q.shape[-1] ** -0.5
    q_block = max(1, min(_QUERY_BLOCK, num_q))
    # Equal key blocks (the last one is not a sliver of a few object-pointer tokens).
    num_k_blocks = -(-num_k * q_block // block_elements)
    k_block = -(-num_k // max(1, num_k_blocks))
    k_t = k.transpose(1, 2)  # (BH, d, Nk): bmm reads it in place
    out = torch.empty(q.shape[0], num_q, v.shape[-1], dtype=q.dtype, device=q.device)
    for start in range(0, num_q, q_block):
        stop = min(start + q_block, num_q)
        out[:, start:stop] = _query_block(q[:, start:stop], k_t, v, k_block)
    return out.reshape(*lead, num_q, v.shape[-1])


def _query_block(q: torch.Tensor, k_t: torch.Tensor, v: torch.Tensor, k_block: int) -> torch.Tensor:
    """One block of queries against all keys, key block by key block (online softmax)."""
    acc = row_max = row_sum = None
    for start in range(0, k_t.shape[-1], k_block):
        scores = torch.bmm(q, k_t[..., start : start + k_block])  # (BH, cq, ck)
        block_max = scores.amax(dim=-1, keepdim=True)
        if acc is None:
            row_max = block_max
            scores.sub_(row_max).exp_()
            row_sum = scores.sum(dim=-1, keepdim=True)
            acc = torch.bmm(scores, v[:, start : start + k_block])
            continue
        new_max = torch.maximum(row_max, block_max)
        rescale = (row_max - new_max).exp_()
        scores.sub_(new_max).exp_()
        row_sum = row_sum * rescale + scores.sum(dim=-1, keepdim=True)
        acc = torch.baddbmm(acc * rescale, scores, v[:, start : start + k_block])
        row_max = new_max
    return acc / row_sum
