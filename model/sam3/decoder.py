"""SAM 3's DETR decoder: object queries that attend to the prompt and the fused image.

200 learned queries, each with a learned reference box, and one presence token go
through six post-norm layers: self-attention (queries and presence token together, the
queries' position from their box), cross-attention to the prompt tokens, cross-attention
to the fused image tokens with a per-head bias from each query's box ("box relative
position bias", log-scaled distances of every image row and column to the box's edges,
through two small MLPs), a ReLU feed-forward network. After every layer the normed
queries refine their boxes (iterative box refinement: a delta in logit space) and the
presence token gives a logit that the prompt's concept is in the image at all.

Meta's configuration trains with "divide and conquer" (`dac`): a second copy of the
queries without self-attention (one-to-many matching). Its detector applies it only in
training, so at inference, which is all this module does, the queries run once.
Meta's decoder also means to clamp the presence logit to +-10 but discards the clamped
value; this follows what it computes (no clamp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from model.kernels.cpu_gemm import Linear, mlp
from model.sam3.cancel import poll
from model.sam3.common import (
    MLP,
    MultiheadAttention,
    box_cxcywh_to_xyxy,
    inverse_sigmoid,
    sine_angles,
)


@dataclass(frozen=True)
class DecoderConfig:
    d_model: int = 256
    num_layers: int = 6
    num_queries: int = 200
    num_heads: int = 8
    dim_feedforward: int = 2048


@dataclass(frozen=True)
class DecoderOutput:
    """Per layer, in order: `hidden` (L, B, Q, C) the normed queries, `boxes` (L, B, Q, 4)
    their refined boxes (centre x, centre y, width, height, normalised to [0, 1]),
    `presence_logits` (L, B)."""

    hidden: torch.Tensor
    boxes: torch.Tensor
    presence_logits: torch.Tensor


class DecoderLayer(nn.Module):
    """Self-attention, prompt cross-attention, image cross-attention, FFN; post-norm."""

    def __init__(self, *, d_model: int, num_heads: int, dim_feedforward: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim=d_model, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ca_text = MultiheadAttention(embed_dim=d_model, num_heads=num_heads)
        self.catext_norm = nn.LayerNorm(d_model)
        self.cross_attn = MultiheadAttention(embed_dim=d_model, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = Linear(d_model, dim_feedforward)
        self.linear2 = Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        *,
        memory: torch.Tensor,
        memory_keys: torch.Tensor,
        memory_bias: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """x, pos (B, N, C) tokens and their positions; memory (B, M, C) image tokens,
        memory_keys the same plus their positions; memory_bias (B, heads, N, M); prompt
        (B, S, C) with padding mask (B, S) -> (B, N, C)."""
        qk = x + pos
        x = self.norm2(x + self.self_attn(qk, qk, x))
        x = self.catext_norm(
            x + self.ca_text(x + pos, prompt, prompt, key_padding_mask=prompt_mask)
        )
        x = self.norm1(x + self.cross_attn(x + pos, memory_keys, memory, bias=memory_bias))
        return self.norm3(x + mlp(x, self.linear1, self.linear2, "relu"))


def box_sine_embedding(boxes: torch.Tensor, d_model: int) -> torch.Tensor:
    """(..., 4) boxes (cx, cy, w, h) -> (..., 2 * d_model): sine encodings of cy, cx, w, h
    with d_model / 2 channels each, in that order."""
    cx, cy, w, h = boxes.unbind(-1)
    n = d_model // 2
    return torch.cat([sine_angles(c, n) for c in (cy, cx, w, h)], dim=-1)


def _log_distance(d: torch.Tensor) -> torch.Tensor:
    """Signed log2 scaling of distances in [-1, 1] to about [-1, 1]: sign(8d) log2(|8d|+1)/3."""
    d = d * 8
    return torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8)


class Decoder(nn.Module):
    """`transformer.decoder` of the detector."""

    def __init__(self, *, cfg: DecoderConfig = DecoderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.layers = nn.ModuleList(
            DecoderLayer(d_model=d, num_heads=cfg.num_heads, dim_feedforward=cfg.dim_feedforward)
            for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.bbox_embed = MLP(input_dim=d, hidden_dim=d, output_dim=4, num_layers=3)
        self.query_embed = nn.Embedding(cfg.num_queries, d)
        self.reference_points = nn.Embedding(cfg.num_queries, 4)
        self.boxRPB_embed_x = MLP(input_dim=2, hidden_dim=d, output_dim=cfg.num_heads, num_layers=2)
        self.boxRPB_embed_y = MLP(input_dim=2, hidden_dim=d, output_dim=cfg.num_heads, num_layers=2)
        self.presence_token = nn.Embedding(1, d)
        self.presence_token_head = MLP(input_dim=d, hidden_dim=d, output_dim=1, num_layers=3)
        self.presence_token_out_norm = nn.LayerNorm(d)
        self.ref_point_head = MLP(input_dim=2 * d, hidden_dim=d, output_dim=d, num_layers=2)

    def box_bias(self, boxes: torch.Tensor, size: tuple[int, int], lead: int = 0) -> torch.Tensor:
        """Box relative position bias: boxes (B, Q, 4) -> (B, heads, lead + Q, H*W), from the
        log-scaled distances of each grid row (column) at i / H (i / W) to the box's top and
        bottom (left and right) edges; the first `lead` rows zero (the presence token's).

        Written straight into the one tensor: at 200 queries over 72 x 72 it is 33 MB in
        float32 a layer, and concatenating the zero row after took 70 ms of the decoder's
        370 (float32, 6 layers; 29 of 250 ms in bf16)."""
        h, w = size
        x0, y0, x1, y1 = box_cxcywh_to_xyxy(boxes).unbind(-1)
        rows = torch.arange(h, dtype=boxes.dtype, device=boxes.device) / h
        cols = torch.arange(w, dtype=boxes.dtype, device=boxes.device) / w
        dy = rows[:, None] - torch.stack((y0, y1), dim=-1)[:, :, None, :]  # (B, Q, H, 2)
        dx = cols[:, None] - torch.stack((x0, x1), dim=-1)[:, :, None, :]  # (B, Q, W, 2)
        by = self.boxRPB_embed_y(_log_distance(dy)).permute(0, 3, 1, 2)  # (B, heads, Q, H)
        bx = self.boxRPB_embed_x(_log_distance(dx)).permute(0, 3, 1, 2)  # (B, heads, Q, W)
        b, heads, q = by.shape[:3]
        dtype = torch.promote_types(by.dtype, bx.dtype)
        out = by.new_empty(b, heads, lead + q, h * w, dtype=dtype)
        out[:, :, :lead] = 0
        torch.add(by[..., :, None], bx[..., None, :], out=out[:, :, lead:].view(b, heads, q, h, w))
        return out

    def forward(
        self,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        size: tuple[int, int],
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> DecoderOutput:
        """memory, memory_pos (B, H*W, C) fused image tokens (row-major over `size`) and
        their position encodings; prompt (B, S, C) with padding mask (B, S) bool."""
        b = memory.shape[0]
        d = self.cfg.d_model
        queries = self.query_embed.weight[None].expand(b, -1, -1)
        x = torch.cat((self.presence_token.weight[None].expand(b, -1, -1), queries), dim=1)
        boxes = self.reference_points.weight.sigmoid()[None].expand(b, -1, -1)
        memory_keys = memory + memory_pos
        no_pos = x.new_zeros(b, 1, d)
        hidden, refined, presence = [], [], []
        for layer in self.layers:
            poll()
            query_pos = self.ref_point_head(box_sine_embedding(boxes, d))
            bias = self.box_bias(boxes, size, lead=1)  # no bias for the presence token
            x = layer(
                x,
                torch.cat((no_pos, query_pos), dim=1),
                memory=memory,
                memory_keys=memory_keys,
                memory_bias=bias,
                prompt=prompt,
                prompt_mask=prompt_mask,
            )
            normed = self.norm(x[:, 1:])
            boxes = (inverse_sigmoid(boxes) + self.bbox_embed(normed)).sigmoid()
            logit = self.presence_token_head(self.presence_token_out_norm(x[:, 0]))
            hidden.append(normed)
            refined.append(boxes)
            presence.append(logit.squeeze(-1))
        return DecoderOutput(
            hidden=torch.stack(hidden),
            boxes=torch.stack(refined),
            presence_logits=torch.stack(presence),
        )
