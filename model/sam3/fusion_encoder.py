"""SAM 3's fusion encoder: image tokens attend to themselves and to the prompt tokens.

Six pre-norm layers of width 256 over the 72 x 72 image tokens of the neck's coarsest
kept level: self-attention with the image's sine position encoding added to queries and
keys, cross-attention to the prompt (text tokens, then the geometry encoder's tokens)
without position encodings, a ReLU feed-forward network. The prompt is not updated and
there is no final norm. Meta's configuration does not add pooled text to the image
features (`add_pooled_text_to_img_feat=False`), so no `text_pooling_proj` exists.

The same layer, with other position-encoding flags, encodes the geometry prompt
(`model.sam3.geometry_encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.kernels.cpu_gemm import Linear, mlp
from model.sam3.cancel import poll
from model.sam3.common import MultiheadAttention


@dataclass(frozen=True)
class FusionEncoderConfig:
    d_model: int = 256
    num_layers: int = 6
    num_heads: int = 8
    dim_feedforward: int = 2048


class EncoderLayer(nn.Module):
    """Pre-norm self-attention, cross-attention to `memory`, ReLU FFN, each residual.

    `pos_at_self_attn`: add `query_pos` to the self-attention's queries and keys;
    `pos_at_cross_keys`: add `memory_pos` to the cross-attention's keys.
    """

    def __init__(
        self,
        *,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        pos_at_self_attn: bool,
        pos_at_cross_keys: bool,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim=d_model, num_heads=num_heads)
        self.cross_attn_image = MultiheadAttention(embed_dim=d_model, num_heads=num_heads)
        self.linear1 = Linear(d_model, dim_feedforward)
        self.linear2 = Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.pos_at_self_attn = pos_at_self_attn
        self.pos_at_cross_keys = pos_at_cross_keys

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        *,
        query_pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        memory_pos: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, N, C), memory (B, M, C) -> (B, N, C); masks (B, N) and (B, M), True = pad."""
        x = self.attend_self(x, query_pos=query_pos, key_padding_mask=key_padding_mask)
        return self.attend_memory(
            x, memory, memory_pos=memory_pos, memory_key_padding_mask=memory_key_padding_mask
        )

    def attend_self(
        self,
        x: torch.Tensor,
        *,
        query_pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The self-attention step with its residual: (B, N, C) -> (B, N, C)."""
        h = self.norm1(x)
        qk = h + query_pos if self.pos_at_self_attn else h
        return x + self.self_attn(qk, qk, h, key_padding_mask=key_padding_mask)

    def attend_memory(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        *,
        memory_pos: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The cross-attention to `memory` and the FFN, each with its residual."""
        h = self.norm2(x)
        keys = memory + memory_pos if self.pos_at_cross_keys else memory
        x = x + self.cross_attn_image(h, keys, memory, key_padding_mask=memory_key_padding_mask)
        return x + mlp(self.norm3(x), self.linear1, self.linear2, "relu")


class FusionEncoder(nn.Module):
    """`transformer.encoder` of the detector: (image, prompt) -> fused image tokens."""

    def __init__(self, *, cfg: FusionEncoderConfig = FusionEncoderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(
            EncoderLayer(
                d_model=cfg.d_model,
                num_heads=cfg.num_heads,
                dim_feedforward=cfg.dim_feedforward,
                pos_at_self_attn=True,
                pos_at_cross_keys=False,
            )
            for _ in range(cfg.num_layers)
        )

    def start(self, image: torch.Tensor, image_pos: torch.Tensor) -> torch.Tensor:
        """The image tokens after the first layer's self-attention, (B, H*W, C): a function
        of the image alone (the prompt enters at the cross-attention after it), so a frame's
        can be kept for every prompt on it; a sixth of the encoder's cost at 72 x 72."""
        x = image.flatten(2).transpose(1, 2)
        pos = image_pos.flatten(2).transpose(1, 2)
        return self.layers[0].attend_self(x, query_pos=pos)

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """image, image_pos (B, C, H, W); prompt (B, S, C); prompt_mask (B, S) bool, True
        for padding -> fused image tokens (B, H*W, C), row-major over the grid. `start`:
        `self.start(image, image_pos)` computed before, if it was."""
        pos = image_pos.flatten(2).transpose(1, 2)
        x = self.start(image, image_pos) if start is None else start
        for i, layer in enumerate(self.layers):
            poll()
            if i:
                x = layer.attend_self(x, query_pos=pos)
            x = layer.attend_memory(x, prompt, memory_key_padding_mask=prompt_mask)
        return x
