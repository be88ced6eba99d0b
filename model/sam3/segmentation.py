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

from model.sam3.cancel import poll
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

    def project_levels(self, fine_levels: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Each stage's convolution of its finer level alone, without the bias, in stage
        order (coarsest level first): what `forward` adds to the convolution of the
        upsampled coarse map, a function of the frame alone (see `forward`)."""
        self._check(fine_levels)
        out = []
        for i, level in enumerate(reversed(fine_levels)):
            poll()
            out.append(F.conv2d(level, self.conv_layers[i].weight, None, padding=1))
        return tuple(out)

    def forward(
        self,
        coarse: torch.Tensor,
        fine_levels: list[torch.Tensor],
        projected: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """coarse (B, C, h, w); fine_levels finest first, each (B, C, Hi, Wi) -> (B, C, H0, W0).

        The convolution is linear: conv(level + up(x)) = conv(level) + conv(up(x)). With
        `projected` (`project_levels` of the same levels, kept with the frame) only the
        upsampled map is convolved, and where the level is twice the map on a side (always,
        at the released sizes), as four 2 x 2 convolutions on the map itself, one per output
        phase (`conv_upsampled`): 16 rather than 36 products per map pixel. The pixel
        decoder of another prompt on a cached frame then costs 0.45x the FLOPs.
        """
        self._check(fine_levels)
        x = coarse
        for i, level in enumerate(reversed(fine_levels)):
            poll()
            conv = self.conv_layers[i]
            # Sums and the ReLU in place on fresh tensors: at 288 x 288 each map is 85 MB
            # in float32, and exact mode's peak memory is near its goal.
            if projected is not None and level.shape[-2:] == (2 * x.shape[-2], 2 * x.shape[-1]):
                x = conv_upsampled(x, conv.weight, conv.bias)
                x = x.add_(projected[i]) if x.dtype == projected[i].dtype else x + projected[i]
            else:
                up = F.interpolate(x, size=level.shape[-2:], mode="nearest")
                fresh = up.dtype == level.dtype and up.data_ptr() != x.data_ptr()
                x = conv(up.add_(level) if fresh else up + level)
            x = F.relu(self.norms[i](x), inplace=True)
        return x

    def _check(self, fine_levels: list[torch.Tensor]) -> None:
        if len(fine_levels) > len(self.conv_layers):
            raise ValueError(f"{len(fine_levels)} levels for {len(self.conv_layers)} stages")


def _phase_taps(weight: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 3-tap kernel axis seen from the grid before a x2 nearest upsampling: output phase
    0 (even rows) reads the map's rows i - 1 and i with taps (w0, w1 + w2), phase 1 (odd
    rows) rows i and i + 1 with (w0 + w1, w2)."""
    w0, w1, w2 = weight.unbind(dim)
    return torch.stack((w0, w1 + w2), dim), torch.stack((w0 + w1, w2), dim)


def conv_upsampled(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """conv2d(nearest x2 upsampling of x, weight (O, I, 3, 3), bias, padding 1), computed on
    x (B, I, h, w) itself -> (B, O, 2h, 2w): output pixel (2i + py, 2j + px) as a 2 x 2
    convolution of x per phase (py, px); zero padding of the upsampled map is zero padding
    of x, one row or column on the side each phase reaches past."""
    b, _, h, w = x.shape
    channels = weight.shape[0]
    # Channels-last, as the neck's levels and the fused tokens come: oneDNN's convolutions
    # take that layout at twice the speed of contiguous NCHW here.
    x = x.contiguous(memory_format=torch.channels_last)
    out = None
    taps = weight.float()
    for py, rows in enumerate(_phase_taps(taps, 2)):
        for px, kernel in enumerate(_phase_taps(rows, 3)):
            pad = (1, 0) if px == 0 else (0, 1)
            pad += (1, 0) if py == 0 else (0, 1)
            phase = F.conv2d(F.pad(x, pad), kernel.to(weight.dtype), bias)  # (B, O, h, w)
            if out is None:
                out = phase.new_empty(b, h, 2, w, 2, channels)
            out[:, :, py, :, px] = phase.permute(0, 2, 3, 1)
    return out.view(b, 2 * h, 2 * w, channels).permute(0, 3, 1, 2)


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
        projected: tuple[torch.Tensor, ...] | None = None,
    ) -> SegmentationOutput:
        """fine_levels: the neck's levels finer than the fused grid, finest first, each
        (B, C, Hi, Wi); memory (B, h*w, C) the fused image tokens, row-major over `size`
        (h, w); prompt (B, S, C) with padding mask (B, S); queries (B, Q, C) the decoder's
        last normed queries; `projected`: the pixel decoder's `project_levels(fine_levels)`
        where the frame's were kept."""
        attended = self.cross_attend_prompt(
            self.cross_attn_norm(memory), prompt, prompt, key_padding_mask=prompt_mask
        )
        memory = attended + memory
        coarse = memory.transpose(1, 2).reshape(memory.shape[0], -1, *size)
        pixels = self.pixel_decoder(coarse, fine_levels, projected)
        masks = self.mask_predictor(queries, pixels, self.instance_seg_head)
        return SegmentationOutput(mask_logits=masks, semantic_logits=self.semantic_seg_head(pixels))
