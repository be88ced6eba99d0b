"""Building blocks shared by SAM 3's detector heads: multi-head attention with the
parameters of `nn.MultiheadAttention`, an MLP with an optional residual and output norm,
and box helpers.

Every sequence here is batch first, (B, N, C); masks follow torch's key-padding
convention (True where a token is padding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels import bf16_attention, blocked_attention
from model.kernels.cpu_gemm import Linear, linear
from model.sam2.common import MLP as Sam2MLP

# Keys from which fast mode's unmasked attention takes bf16 blocks (see MultiheadAttention).
_LONG_ROWS = 4096


class MultiheadAttention(nn.Module):
    """Softmax attention over `num_heads` heads, parameters named as in
    `nn.MultiheadAttention` (`in_proj_weight` holding q, k, v rows, `out_proj`), so
    checkpoints of modules built from it load unchanged. No dropout: inference only.

    The attention itself is torch's fused kernel, not `model.kernels.attention`'s routes: at the
    detector's head dim of 32 they lose to it. The fusion encoder's self-attention (8 heads,
    5184 x 5184, 2-core AMD EPYC under load, best of 5): float32 1.0 s against 1.3 s for
    `model.kernels.blocked_attention` on one thread, 1.3 s against 7.1 s on two; bf16 1.4 s against
    3.0 s (`model.kernels.attention`'s chunked bf16 route) and 5.8 s (blocked) on two threads.
    On a quiet machine (2 threads, best of 3) the same attention took 196 ms float32, 223 ms
    bf16 in the fused kernel, 213 ms in the chunked bf16 route and 178 ms in bf16 blocks: so
    fast mode's unmasked attentions over long rows (`_LONG_ROWS` keys: the fusion encoder's
    self-attention) take the bf16 blocks where `model.kernels.bf16_attention` says its
    routes pay (no AMX).
    """

    def __init__(self, *, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        *,
        key_padding_mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query (B, Nq, C), key and value (B, Nk, C) -> (B, Nq, C).

        key_padding_mask (B, Nk) bool, True for keys to ignore; bias (B, heads, Nq, Nk)
        added to the logits. `key is query` computes their two projections as one product.
        """
        d = self.embed_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if key is query:
            q, k = linear(query, w[: 2 * d], b[: 2 * d]).split(d, dim=-1)
        else:
            q = linear(query, w[:d], b[:d])
            k = linear(key, w[d : 2 * d], b[d : 2 * d])
        v = linear(value, w[2 * d :], b[2 * d :])
        q, k, v = self._split(q), self._split(k), self._split(v)
        mask = bias
        if key_padding_mask is not None:
            pad = torch.zeros(key_padding_mask.shape, dtype=q.dtype, device=q.device)
            pad = pad.masked_fill(key_padding_mask, float("-inf"))[:, None, None, :]
            mask = pad if mask is None else mask + pad
        if mask is not None:
            mask = mask.to(q.dtype)
        if mask is None and k.shape[-2] >= _LONG_ROWS and bf16_attention.uses_bf16_route(q, k, v):
            out = blocked_attention.blocked_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], d)
        return self.out_proj(out)


class MLP(Sam2MLP):
    """SAM 2's ReLU MLP (parameters in `layers.{i}`), then optionally `x + input` and a
    LayerNorm (`out_norm`), as SAM 3's scoring and segmentation heads use it."""

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        residual: bool = False,
        out_norm: bool = False,
    ) -> None:
        if residual and input_dim != output_dim:
            raise ValueError("a residual MLP needs input_dim == output_dim")
        super().__init__(
            input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim, num_layers=num_layers
        )
        self.residual = residual
        self.out_norm = nn.LayerNorm(output_dim) if out_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., input_dim) -> (..., output_dim)."""
        y = super().forward(x)
        if self.residual:
            y = y + x
        return self.out_norm(y) if self.out_norm is not None else y


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """log(x / (1 - x)) with x clamped to [0, 1] and both terms to at least `eps`."""
    x = x.clamp(0.0, 1.0)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre x, centre y, width, height -> (..., 4) x0, y0, x1, y1."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def sine_angles(coord: torch.Tensor, num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine encoding of normalised coordinates: (...,) -> (..., num_feats), channel pairs
    (sin, cos) of coord * 2 pi / temperature ** (2 * (i // 2) / num_feats)."""
    i = torch.arange(num_feats, dtype=torch.float32, device=coord.device)
    dim_t = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / num_feats)
    angles = (coord * (2 * math.pi))[..., None] / dim_t
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)
