"""Softmax attention for every attention of the network, by the fastest exact route.

`F.scaled_dot_product_attention` is the default. Two CPU cases go elsewhere, each
measured faster there and each the same maths (tests in `tests/model/`):
- bf16 inputs of a large enough size on a CPU without AMX: `model.kernels.bf16_attention` (bf16
  matmuls around a softmax; torch's own bf16 attention is no faster than float32 there),
  long rows in `model.kernels.blocked_attention`'s bf16 blocks;
- float32 with values narrower than the queries' head dim: `model.kernels.blocked_attention`
  (the fused kernel handles those slowly; memory attention attends over raw 64-channel
  memories on CPU and projects the result, see `model.sam2.memory_attention`);
- any large float32 attention where float32 products run faster on oneDNN than on
  torch's BLAS (`model.kernels.cpu_gemm`, AMD CPUs): `model.kernels.blocked_attention` too, whose
  products go to oneDNN. On a 2-core AMD EPYC (Zen 5): memory attention's self-attention
  49 against 140 ms, the image encoder's global blocks 92 against 352 ms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.kernels import bf16_attention, blocked_attention


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention without mask or dropout, scaled by 1 / sqrt(head_dim).

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> (..., Nq, dv); leading dims
    (batch, heads) broadcast as in `F.scaled_dot_product_attention`.
    """
    # Module attributes, not imported names, so tests can count the routes taken.
    if bf16_attention.uses_bf16_route(q, k, v):
        if bf16_attention.rows_take_blocks(k):
            return blocked_attention.blocked_attention(q, k, v)
        return bf16_attention.chunked_bf16_attention(q, k, v)
    if blocked_attention.uses_blocked_route(q, k, v):
        return blocked_attention.blocked_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v)


def narrow_values_pay(q: torch.Tensor) -> bool:
    """Whether attending over values narrower than the head dim (and projecting after)
    is the cheaper order for queries like `q`: on CPU, where the blocked and bf16 routes
    take narrow values well, but not where bf16 goes to torch's fused kernel on AMX, which
    takes them slowly (4096 queries over 28,736 keys, head dim 256: 0.94 s with 64-channel
    values against 0.11 s with 256).
    """
    if q.device.type != "cpu":
        return False
    return q.dtype != torch.bfloat16 or not bf16_attention.fused_kernel_has_amx()
