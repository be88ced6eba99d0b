"""Softmax attention for every attention of the network, by the fastest exact route.

`F.scaled_dot_product_attention` is the default. Two CPU cases go elsewhere, each
measured faster there and each the same maths (tests in `tests/model/`):
- bf16 inputs of a large enough size: `model.bf16_attention` (bf16 matmuls around a
  softmax; torch's own bf16 attention on CPU is no faster than float32);
- float32 with values narrower than the queries' head dim: `model.blocked_attention`
  (the fused kernel handles those slowly; memory attention attends over raw 64-channel
  memories on CPU and projects the result, see `model.memory_attention`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model import bf16_attention, blocked_attention


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention without mask or dropout, scaled by 1 / sqrt(head_dim).

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> (..., Nq, dv); leading dims
    (batch, heads) broadcast as in `F.scaled_dot_product_attention`.
    """
    # Module attributes, not imported names, so tests can count the routes taken.
    if bf16_attention.uses_bf16_route(q, k, v):
        return bf16_attention.chunked_bf16_attention(q, k, v)
    if blocked_attention.uses_blocked_route(q, k, v):
        return blocked_attention.blocked_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v)
