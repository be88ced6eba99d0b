"""SAM 3's geometry (exemplar) encoder: boxes and points -> prompt tokens.

Each box is the sum of a linear projection of its (cx, cy, w, h), a 7 x 7 convolution
of its ROI-aligned image features (`model.sam3.roi_align`), a projection of its sine
position encoding (centre y, centre x, then raw h and w) and a label embedding (0
negative, 1 positive). Points likewise: their (x, y), the image features bilinearly
sampled at them, their sine encoding (x then y), their label. Image features are
layer-normed before pooling. Points come first, then boxes, then a learned CLS token:
Meta's model always appends it, so a text-only prompt still gets one geometry token.
The sequence is projected and normed, then goes through three pre-norm layers (self-
attention among the tokens, cross-attention to the image tokens with position encodings
on the keys, ReLU FFN) and a final norm.

Sequences are batch first and right-padded (`mask` True on padding); tokens are packed
as Meta's `concat_padded_sequences` packs them, so padded rows hold the same values too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.cpu_gemm import Linear
from model.sam3.common import box_cxcywh_to_xyxy, sine_angles
from model.sam3.fusion_encoder import EncoderLayer
from model.sam3.roi_align import roi_align


@dataclass(frozen=True)
class GeometryEncoderConfig:
    d_model: int = 256
    num_layers: int = 3
    num_heads: int = 8
    dim_feedforward: int = 2048
    roi_size: int = 7


def concat_padded(
    seq1: torch.Tensor, mask1: torch.Tensor, seq2: torch.Tensor, mask2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two right-padded sequences (B, N1, C), (B, N2, C) with masks (B, N1), (B, N2) -> one
    right-padded (B, N1 + N2, C): each row's valid part of seq2 follows its valid part of
    seq1. Rows past the valid ones keep what lands there (seq1's padding, seq2's, or 0)."""
    b, n1, c = seq1.shape
    n2 = seq2.shape[1]
    len1 = (~mask1).sum(dim=1)
    len2 = (~mask2).sum(dim=1)
    out = seq2.new_zeros(b, n1 + n2, c)
    out[:, :n1] = seq1
    index = len1[:, None] + torch.arange(n2, device=seq2.device)[None]
    out = out.scatter(1, index[..., None].expand(-1, -1, c), seq2)
    mask = torch.arange(n1 + n2, device=seq2.device)[None] >= (len1 + len2)[:, None]
    return out, mask


class GeometryEncoder(nn.Module):
    """`geometry_encoder` of the detector."""

    def __init__(self, *, cfg: GeometryEncoderConfig = GeometryEncoderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.label_embed = nn.Embedding(2, d)
        self.cls_embed = nn.Embedding(1, d)
        self.points_direct_project = Linear(2, d)
        self.points_pool_project = Linear(d, d)
        self.points_pos_enc_project = Linear(d, d)
        self.boxes_direct_project = Linear(4, d)
        self.boxes_pool_project = nn.Conv2d(d, d, cfg.roi_size)
        self.boxes_pos_enc_project = Linear(d + 2, d)
        self.final_proj = Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.img_pre_norm = nn.LayerNorm(d)
        self.encode = nn.ModuleList(
            EncoderLayer(
                d_model=d,
                num_heads=cfg.num_heads,
                dim_feedforward=cfg.dim_feedforward,
                pos_at_self_attn=False,
                pos_at_cross_keys=True,
            )
            for _ in range(cfg.num_layers)
        )
        self.encode_norm = nn.LayerNorm(d)

    def _points(
        self, points: torch.Tensor, labels: torch.Tensor, normed_image: torch.Tensor
    ) -> torch.Tensor:
        """points (B, M, 2) x, y in [0, 1]; labels (B, M) -> (B, M, C)."""
        grid = (points * 2 - 1)[:, :, None, :]  # (B, M, 1, 2)
        sampled = F.grid_sample(normed_image, grid, align_corners=False)  # (B, C, M, 1)
        half = self.cfg.d_model // 2
        pos = torch.cat((sine_angles(points[..., 0], half), sine_angles(points[..., 1], half)), -1)
        return (
            self.points_direct_project(points)
            + self.points_pool_project(sampled[..., 0].transpose(1, 2))
            + self.points_pos_enc_project(pos)
            + self.label_embed(labels.long())
        )

    def _boxes(
        self, boxes: torch.Tensor, labels: torch.Tensor, normed_image: torch.Tensor
    ) -> torch.Tensor:
        """boxes (B, N, 4) cx, cy, w, h in [0, 1]; labels (B, N) -> (B, N, C)."""
        b, n = boxes.shape[:2]
        h, w = normed_image.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        pooled = roi_align(normed_image, box_cxcywh_to_xyxy(boxes) * scale, self.cfg.roi_size)
        pooled = self.boxes_pool_project(pooled.flatten(0, 1)).view(b, n, self.cfg.d_model)
        cx, cy, bw, bh = boxes.unbind(-1)
        half = self.cfg.d_model // 2
        pos = torch.cat(
            (sine_angles(cy, half), sine_angles(cx, half), bh[..., None], bw[..., None]), -1
        )
        return (
            self.boxes_direct_project(boxes)
            + pooled
            + self.boxes_pos_enc_project(pos)
            + self.label_embed(labels.long())
        )

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        *,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        box_mask: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        point_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image, image_pos (B, C, H, W): the neck's level the detector fuses, its position
        encoding. boxes (B, N, 4) normalised cx, cy, w, h; points (B, M, 2) normalised x, y;
        labels (B, N) / (B, M), 1 (True) positive, 0 negative, default positive; masks True
        on padding, default none. -> tokens (B, S, C), padding mask (B, S); S = M + N + 1."""
        b, c = image.shape[:2]
        tokens = image.flatten(2).transpose(1, 2)  # (B, HW, C)
        tokens_pos = image_pos.flatten(2).transpose(1, 2)
        normed = self.img_pre_norm(tokens).transpose(1, 2).reshape(image.shape)
        none = torch.zeros(b, 0, dtype=torch.bool, device=image.device)

        def defaults(x, labels, mask, width):  # noqa: ANN001, ANN202
            if x is None:
                x = image.new_zeros(b, 0, width)
            n = x.shape[1]
            if labels is None:
                labels = torch.ones(b, n, dtype=torch.long, device=image.device)
            if mask is None:
                mask = none.new_zeros(b, n)
            return x.to(image.dtype), labels, mask

        points, point_labels, point_mask = defaults(points, point_labels, point_mask, 2)
        boxes, box_labels, box_mask = defaults(boxes, box_labels, box_mask, 4)
        x, mask = concat_padded(
            self._points(points, point_labels, normed),
            point_mask,
            self._boxes(boxes, box_labels, normed),
            box_mask,
        )
        cls = self.cls_embed.weight[None].expand(b, 1, c)
        x, mask = concat_padded(x, mask, cls, none.new_zeros(b, 1))
        x = self.norm(self.final_proj(x))
        for layer in self.encode:
            x = layer(x, tokens, key_padding_mask=mask, memory_pos=tokens_pos)
        return self.encode_norm(x), mask
