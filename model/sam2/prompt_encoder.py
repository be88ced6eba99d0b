"""SAM's prompt encoder: clicks and boxes become tokens, a mask becomes a dense map.

Point labels: 1 positive click, 0 negative click, -1 padding ("not a point"),
2 and 3 the top-left and bottom-right corners of a box (SAM 2 also feeds boxes
as two labelled points). Coordinates are (x, y) pixels of the model's input image.
"""

from __future__ import annotations

import torch
from torch import nn

from model.sam2.common import LayerNorm2d
from model.sam2.config import PromptEncoderConfig
from model.sam2.position_encoding import RandomFourierEncoding

# Labels with a learned embedding; -1 gets `not_a_point_embed` instead of a position.
_NUM_POINT_LABELS = 4
_PAD_LABEL = -1
_BOX_TOP_LEFT, _BOX_BOTTOM_RIGHT = 2, 3


class PromptEncoder(nn.Module):
    """Embeds points, boxes and a mask prompt for the mask decoder."""

    def __init__(self, *, cfg: PromptEncoderConfig, image_size: int, backbone_stride: int) -> None:
        super().__init__()
        if image_size <= 0 or backbone_stride <= 0 or image_size % backbone_stride:
            raise ValueError(
                f"image_size {image_size} must be a positive multiple of "
                f"backbone_stride {backbone_stride}"
            )
        if cfg.embed_dim % 2 or cfg.mask_in_chans % 4:
            raise ValueError("embed_dim must be even and mask_in_chans a multiple of 4")
        embed_dim, grid = cfg.embed_dim, image_size // backbone_stride
        self.embed_dim = embed_dim
        self.input_image_size = (image_size, image_size)
        self.image_embedding_size = (grid, grid)
        # Mask prompts come at 4x the embedding grid (the decoder's low-res mask size).
        self.mask_input_size = (4 * grid, 4 * grid)

        self.pe_layer = RandomFourierEncoding(num_pos_feats=embed_dim // 2)
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, embed_dim) for _ in range(_NUM_POINT_LABELS)
        )
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        hidden = cfg.mask_in_chans // 4
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, hidden, kernel_size=2, stride=2),
            LayerNorm2d(hidden),
            nn.GELU(),
            nn.Conv2d(hidden, cfg.mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(cfg.mask_in_chans),
            nn.GELU(),
            nn.Conv2d(cfg.mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Position encoding of every cell of the image embedding grid -> (1, C, h, w)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """coords (B, N, 2), labels (B, N) -> (B, N + pad, C)."""
        # Float32 so that the half-pixel shift is exact even if the caller sent bf16.
        coords = coords.to(torch.float32) + 0.5  # pixel centres
        if pad:
            # Without a box the decoder was trained with one trailing padding token.
            b = coords.shape[0]
            coords = torch.cat([coords, coords.new_zeros(b, 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((b, 1), _PAD_LABEL)], dim=1)
        pe = self.pe_layer.forward_with_coords(coords, self.input_image_size)  # (B, N, C)

        # One row per label -1..3, plus a zero row so any other label adds nothing
        # (the reference leaves such points as bare positions); no host sync needed.
        table = torch.cat(
            [self.not_a_point_embed.weight]
            + [emb.weight for emb in self.point_embeddings]
            + [self.not_a_point_embed.weight.new_zeros(1, self.embed_dim)]
        )  # (6, C)
        known = (labels >= _PAD_LABEL) & (labels < _NUM_POINT_LABELS)
        rows = torch.where(known, labels + 1, table.shape[0] - 1).long()
        is_pad = (labels == _PAD_LABEL).unsqueeze(-1)
        return torch.where(is_pad, 0.0, pe) + table[rows]

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes (B, 4) or (B, 1, 4) as x0, y0, x1, y1 -> (B, 2, C)."""
        corners = boxes.to(torch.float32).reshape(-1, 2, 2) + 0.5  # pixel centres
        pe = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_embed = torch.cat(
            [
                self.point_embeddings[_BOX_TOP_LEFT].weight,
                self.point_embeddings[_BOX_BOTTOM_RIGHT].weight,
            ]
        )  # (2, C)
        return pe + corner_embed

    def _check_prompts(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> int:
        """Validate shapes and return the batch size."""
        sizes = []
        if points is not None:
            coords, labels = points
            if coords.dim() != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(
                    "points must be coords (B, N, 2) and labels (B, N), got "
                    f"{tuple(coords.shape)} and {tuple(labels.shape)}"
                )
            sizes.append(coords.shape[0])
        if boxes is not None:
            if (
                boxes.shape[-1] != 4
                or boxes.dim() not in (2, 3)
                or boxes.numel() // 4 != len(boxes)
            ):
                raise ValueError(f"boxes must be (B, 4) or (B, 1, 4), got {tuple(boxes.shape)}")
            sizes.append(boxes.shape[0])
        if masks is not None:
            if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[2:] != self.mask_input_size:
                raise ValueError(
                    f"masks must be (B, 1, {self.mask_input_size[0]}, {self.mask_input_size[1]}),"
                    f" got {tuple(masks.shape)}"
                )
            sizes.append(masks.shape[0])
        if len(set(sizes)) > 1:
            raise ValueError(f"prompts disagree on the batch size: {sizes}")
        return sizes[0] if sizes else 1

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed the prompts.

        points: coords (B, N, 2) in input-image pixels and labels (B, N);
        boxes: (B, 4) x0, y0, x1, y1; masks: (B, 1, 4h, 4w) mask logits.
        Returns sparse (B, N', C) tokens and dense (B, C, h, w) embeddings.
        """
        b = self._check_prompts(points, boxes, masks)
        sparse = []
        if points is not None:
            sparse.append(self._embed_points(*points, pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        if sparse:
            sparse_embeddings = torch.cat(sparse, dim=1)
        else:
            sparse_embeddings = self.no_mask_embed.weight.new_empty(b, 0, self.embed_dim)

        if masks is not None:
            dense_embeddings = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense_embeddings = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
        return sparse_embeddings, dense_embeddings
