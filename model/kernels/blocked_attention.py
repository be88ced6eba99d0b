"""Attention in blocks with an online softmax, for CPUs: float32 (narrow values, oneDNN), bf16.

Memory attention's cross-attention projects 64-channel memories to 256-channel values
and, with one head, `weights @ (M Wv^T + b)` equals `(weights @ M) Wv^T + b` because each
row of softmax weights sums to one. `model.sam2.memory_attention` uses that on CPU: attention
over the raw 64-channel memories, then the value projection on the 4096 outputs. The
weights-times-values product then costs a quarter of its FLOPs (15 instead of 60 GFLOP
per layer for 4096 queries over 7 memory frames at 1024), the same maths in another order.

torch's fused CPU attention does not take values narrower than the queries well (0.87 s
for 4096 queries over 28,736 keys, head dim 256, values of 64 channels, against 0.68 s
with values of 256), so this route computes it in Python-level blocks, as flash attention
does but with one exponential reference per row instead of a running maximum: for a block
of queries and a block of keys, one matmul of scores, exponentials in place, a row sum and
one matmul into the accumulated output (see `_query_block`). Score blocks of 1,024 queries
by 2,048 keys (8 MB). Fewer, larger blocks mean fewer parallel regions, which matters when
another process takes a core (every region ends at a barrier that waits for the
descheduled thread): with 512-query blocks, 8,192 keys beat 4,096. Measured
on 2-core AVX-512 CPUs, 2 threads, dv = 64: on an AMD EPYC 0.48-0.50 s against the fused
kernel's 0.68 s at 256 value channels (the score matmul alone is 0.35 s, its float32
floor); on an Intel Xeon 0.49 s against the fused kernel's 1.0 s (4,096-key blocks 0.53 s),
and with a busy process alongside 0.94 s against 1.39 s (4,096-key blocks 1.0 s), all
with a running maximum and blocks of 512 queries by 8,192 keys; one reference per row
then took it from 0.38 to 0.35 s, blocks of 1,024 queries by 4,096 keys (whose score
matmuls run at 300 GFLOP/s against 280) to 0.33 s, and 1,024 by 2,048 keys to
0.30-0.33 s against 0.31-0.34 (beside a busy process 0.64 s against 0.65); medians of 7
or 8 on a 2-core Xeon with AMX. Within 5e-8 of float32 `F.scaled_dot_product_attention`
on unit-scale inputs.

bf16 inputs (fast mode's attention over long rows, `model.kernels.attention`) take the same
blocks with bf16 products and exponentials, as the chunked bf16 route computes them,
but float32 row sums and a float32 output accumulator. A 1,024 x 2,048 bf16 score block
(4 MB) stays in cache where the chunked route's 64 MB chunks of weights do not: memory
attention over 7 memories at 1024 took 632 ms against 680 (fast mode, 2-core AMD EPYC
Zen 5, medians of 7). A query block whose rows need shifting (scores far from 0)
is computed again in float32 with a running maximum: exact where bf16 would round the
shifted scores.
"""

from __future__ import annotations

import math

import torch

from model.kernels import cpu_gemm
from model.kernels.cpu_gemm import linear

# Score-block elements per (batch * heads) slice: 1024 x 2048 float32 values, 8 MB.
_BLOCK_ELEMENTS = 1 << 21
_QUERY_BLOCK = 1024
# Below this many query x key pairs the fused kernel's single call wins.
MIN_PAIRS = 1 << 16
# Scores are in base 2 (see `blocked_attention`). Row references within this of 0 (2^43,
# about e^30) are not subtracted: later scores may then exceed them by up to about 56
# (e^39) before a row sum leaves the checked range, below.
_UNSHIFTED_LIMIT = 30.0 * math.log2(math.e)
# Row sums at most this (exp(69)) keep every exponential, and the output's sums of up
# to 28,736 weighted values, far from float32's overflow at 3.4e38; a row that exceeds it
# (or any non-finite output) sends the query block to the running-maximum route.
_SUM_LIMIT = 1e30


def uses_blocked_route(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether `model.kernels.attention.attention` takes this route: float32 on CPU, a size where
    the blocks pay, and values narrower than the queries' head dim or float32 products on
    oneDNN (`model.kernels.cpu_gemm`), which the fused kernel's BLAS products do not use."""
    return (
        q.device.type == "cpu"
        and q.dtype == k.dtype == v.dtype == torch.float32
        and q.shape[-2] * k.shape[-2] >= MIN_PAIRS
        and (v.shape[-1] < q.shape[-1] or cpu_gemm.takes_onednn(q, k))
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
    # log2(e) folded into the scale: every exponential below is a power of 2, and torch's
    # exp2 runs 4x its exp on float32 (0.15 against 0.62 ms for a 1,024 x 2,048 block,
    # 2-core AMD EPYC Zen 5, AVX-512), 1.2x on bf16 (0.23 against 0.29). Exact memory
    # attention took 1065 against 1197 ms, fast 605 against 614. bf16 q is rounded once
    # more (at head dim 256 its scale was a power of 2), within the rounding of its bf16
    # scores: fast memory attention's mean error against float32 stayed 1.33e-3.
    q = q * (q.shape[-1] ** -0.5 * math.log2(math.e))
    q_block = max(1, min(_QUERY_BLOCK, num_q))
    # Equal key blocks (the last one is not a sliver of a few object-pointer tokens).
    num_k_blocks = -(-num_k * q_block // block_elements)
    k_block = -(-num_k // max(1, num_k_blocks))
    out = torch.empty(q.shape[0], num_q, v.shape[-1], dtype=q.dtype, device=q.device)
    # One (batch * head) slice at a time: 2D products, which `cpu_gemm.linear` takes.
    for b in range(q.shape[0]):
        keys = k[b].contiguous().split(k_block)  # (ck, d) rows: scores = linear(q, keys)
        values_t = [block.t().contiguous() for block in v[b].split(k_block)]  # (dv, ck)
        for start in range(0, num_q, q_block):
            stop = min(start + q_block, num_q)
            out[b, start:stop] = _query_block(q[b, start:stop], keys, values_t)
    return out.reshape(*lead, num_q, v.shape[-1])


def _query_block(
    q: torch.Tensor, keys: list[torch.Tensor], values_t: list[torch.Tensor]
) -> torch.Tensor:
    """One block of queries (cq, d) against all key blocks: exponentials against one
    reference per row; the result in float32 whatever the inputs' dtype.

    Softmax only needs the exponentials to stay finite; it does not need each key block's
    own maximum. The first key block's row maxima fix a reference for the whole row, and
    every later block is one matmul, exponentials in place, a row sum and one matmul into
    the output: no maximum, no subtraction (where the references are near 0) and no
    rescaling of the output per block, three passes fewer over each score block
    (0.35 s a layer against 0.38 s with a running maximum, 4096 queries over 28,736 keys).
    A row whose later scores outgrow its reference by so much that its sum leaves the safe
    range is caught after the last block, and the query block is computed again with a
    running maximum: exact for every input, fast for the scores the model makes.

    The scores are in base 2 (q carries log2(e)): exponentials are `exp2`.
    """
    scores = linear(q, keys[0])
    reference = scores.amax(dim=-1, keepdim=True)
    # References near 0 need not be subtracted: 2^s is then as exact as 2^(s - m).
    shift = None if reference.abs().max() <= _UNSHIFTED_LIMIT else reference
    if shift is not None and q.dtype != torch.float32:
        return _running_max_block_float32(q, keys, values_t)
    acc = row_sum = None
    for i, (block_keys, block_values_t) in enumerate(zip(keys, values_t, strict=True)):
        if i:
            scores = linear(q, block_keys)
        if shift is not None:
            scores.sub_(shift)
        scores.exp2_()
        # A bf16 block's sum is accumulated in float32 and rounded once, like the chunked
        # route's softmax weights; asking for a float32 sum would first copy the block.
        block_sum = scores.sum(dim=-1, keepdim=True)
        if acc is None:
            row_sum, acc = block_sum.float(), linear(scores, block_values_t).float()
        else:
            row_sum.add_(block_sum)
            acc.add_(linear(scores, block_values_t))
    if row_sum.max() > _SUM_LIMIT or not torch.isfinite(acc).all():
        return _running_max_block_float32(q, keys, values_t)
    return acc.div_(row_sum)


def _running_max_block_float32(
    q: torch.Tensor, keys: list[torch.Tensor], values_t: list[torch.Tensor]
) -> torch.Tensor:
    """`_running_max_block` in float32, whatever the inputs' dtype (a no-op cast for
    float32): the exact fallback for rows the one-reference blocks cannot take."""
    # Autocast off: under fast mode's, float32 products would be recast to bf16.
    with torch.autocast(q.device.type, enabled=False):
        return _running_max_block(
            q.float(), [k.float() for k in keys], [v.float() for v in values_t]
        )


def _running_max_block(
    q: torch.Tensor, keys: list[torch.Tensor], values_t: list[torch.Tensor]
) -> torch.Tensor:
    """One block of queries against all keys with a running row maximum (online softmax):
    every block's scores are shifted by the largest seen so far, the output rescaled when
    it grows. For rows whose scores span more than float32's exponent range allows."""
    acc = row_max = row_sum = None
    for block_keys, block_values_t in zip(keys, values_t, strict=True):
        scores = linear(q, block_keys)  # (cq, ck)
        block_max = scores.amax(dim=-1, keepdim=True)
        if acc is None:
            row_max = block_max
            scores.sub_(row_max).exp2_()
            row_sum = scores.sum(dim=-1, keepdim=True)
            acc = linear(scores, block_values_t)
            continue
        new_max = torch.maximum(row_max, block_max)
        rescale = (row_max - new_max).exp2_()
        scores.sub_(new_max).exp2_()
        row_sum = row_sum * rescale + scores.sum(dim=-1, keepdim=True)
        acc = acc * rescale + linear(scores, block_values_t)
        row_max = new_max
    return acc / row_sum
