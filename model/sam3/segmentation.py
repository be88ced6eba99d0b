"""SAM 3's segmentation head: a mask for every query, MaskFormer style.

The fused image tokens first attend to the prompt once more (pre-norm, residual). As the
coarsest level of a small FPN-style pixel decoder they are upsampled (nearest) onto each
finer neck level in turn, added to it and passed through a 3x3 convolution, GroupNorm(8)
and ReLU; at the default size that is 72 -> 144 -> 288 pixels a side, two of the three
convolutions Meta's checkpoint holds (the third is unused, as in Meta's code). A 1x1
convolution gives per-pixel instance embeddings and each query, through a 3-layer MLP,
a linear classifier over them: mask logits at a quarter of the input resolution (that
convolution is folded into the queries' classifiers, see `MaskPredictor`). A 1x1
convolution to one channel gives the semantic (whole-concept) mask logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.sam3.common import MLP, MultiheadAttention


@dataclass(frozen=True)
class SegmentationConfig:
    d_model: int = 256
    num_heads: int = 8
    upsampling_stages: int = 3
    norm_groups: int = 8


@dataclass(frozen=True)
class SegmentationOutput:
    """`mask_logits` (B, Q, H0, W0) for each query, `semantic_logits` (B, 1, H0, W0); H0, W0
    the finest neck level's size."""

    mask_logits: torch.Tensor
    semantic_logits: torch.Tensor


class PixelDecoder(nn.Module):
    """Coarse-to-fine: upsample, add the finer level, conv 3x3, GroupNorm, ReLU."""

    def __init__(self, *, d_model: int, stages: int, norm_groups: int) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(
            nn.Conv2d(d_model, d_model, 3, padding=1) for _ in range(stages)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(norm_groups, d_model) for _ in range(stages))

    def forward(self, coarse: torch.Tensor, fine_levels: list[torch.Tensor]) -> torch.Tensor:
        """coarse (B, C, h, w); fine_levels finest first, each (B, C, Hi, Wi) -> (B, C, H0, W0)."""
        if len(fine_levels) > len(self.conv_layers):
            raise ValueError(f"{len(fine_levels)} levels for {len(self.conv_layers)} stages")
        x = coarse
        for i, level in enumerate(reversed(fine_levels)):
            x = level + F.interpolate(x, size=level.shape[-2:], mode="nearest")
            x = F.relu(self.norms[i](self.conv_layers[i](x)))
        return x


class MaskPredictor(nn.Module):
    def __init__(self, *, d_model: int) -> None:
        super().__init__()
        self.mask_embed = MLP(
            input_dim=d_model, hidden_dim=d_model, output_dim=d_model, num_layers=3
        )

    def forward(
        self, queries: torch.Tensor, pixels: torch.Tensor, projection: nn.Conv2d
    ) -> torch.Tensor:
        """queries (B, Q, C), pixels (B, C, H, W) -> (B, Q, H, W): each query's embedding
        dotted with `projection(pixels)` (a 1x1 convolution) at every pixel.

        The projection is applied to the Q embeddings instead of the H*W pixels, the same
        sums in another order: e . (W p + b) = (W^T e) . p + e . b. At the default size
        that skips a 256 x 256 product over 288 x 288 pixels (11 GFLOP) for one over at
        most 200 queries.
        """
        b, c, h, w = pixels.shape
        embed = self.mask_embed(queries)  # (B, Q, C_out)
        weight = projection.weight[:, :, 0, 0]  # (C_out, C_in)
        masks = torch.bmm(embed @ weight, pixels.reshape(b, c, h * w))
        if projection.bias is not None:
            masks = masks + (embed @ projection.bias)[..., None]
        return masks.view(b, -1, h, w)


class SegmentationHead(nn.Module):
    """`segmentation_head` of the detector."""

    def __init__(self, *, cfg: SegmentationConfig = SegmentationConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.pixel_decoder = PixelDecoder(
            d_model=d, stages=cfg.upsampling_stages, norm_groups=cfg.norm_groups
        )
        self.mask_predictor = MaskPredictor(d_model=d)
        self.cross_attend_prompt = MultiheadAttention(embed_dim=d, num_heads=cfg.num_heads)
        self.cross_attn_norm = nn.LayerNorm(d)
        self.semantic_seg_head = nn.Conv2d(d, 1, kernel_size=1)
        self.instance_seg_head = nn.Conv2d(d, d, kernel_size=1)

    def forward(
        self,
        fine_levels: list[torch.Tensor],
        memory: torch.Tensor,
        size: tuple[int, int],
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        queries: torch.Tensor,
    ) -> SegmentationOutput:
        """fine_levels: the neck's levels finer than the fused grid, finest first, each
        (B, C, Hi, Wi); memory (B, h*w, C) the fused image tokens, row-major over `size`
        (h, w); prompt (B, S, C) with padding mask (B, S); queries (B, Q, C) the decoder's
        last normed queries."""
        attended = self.cross_attend_prompt(
            self.cross_attn_norm(memory), prompt, prompt, key_padding_mask=prompt_mask
        )
        memory = attended + memory
        coarse = memory.transpose(1, 2).reshape(memory.shape[0], -1, *size)
        pixels = self.pixel_decoder(coarse, fine_levels)
        masks = self.mask_predictor(queries, pixels, self.instance_seg_head)
        return SegmentationOutput(mask_logits=masks, semantic_logits=self.semantic_seg_head(pixels))
