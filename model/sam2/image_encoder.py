"""Image encoder: Hiera trunk followed by the FPN neck."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.sam2.config import Sam2Config
from model.sam2.hiera import Hiera
from model.sam2.neck import FpnNeck


@dataclass
class BackboneOutput:
    """Image features for the decoder and memory; both lists high resolution first."""

    vision_features: torch.Tensor  # (B, C, S/16, S/16), the lowest kept level
    vision_pos_enc: list[torch.Tensor]  # [(B, C, S/4, S/4), (B, C, S/8, S/8), (B, C, S/16, S/16)]
    backbone_fpn: list[torch.Tensor]  # same shapes as vision_pos_enc


class ImageEncoder(nn.Module):
    """Trunk + neck, dropping the `scalp` lowest-resolution levels of the pyramid."""

    def __init__(self, *, trunk: Hiera, neck: FpnNeck, scalp: int) -> None:
        super().__init__()
        trunk_channels = tuple(reversed(trunk.channels))
        if trunk_channels != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk_channels} (lowest resolution first) do not match the "
                f"neck's backbone_channel_list {neck.backbone_channel_list}"
            )
        if not 0 <= scalp < len(trunk_channels):
            raise ValueError(f"scalp must be in [0, {len(trunk_channels) - 1}], got {scalp}")
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: torch.Tensor) -> BackboneOutput:
        """(B, 3, S, S) normalised images -> pyramid features and position encodings."""
        feats, pos = self.neck(self.trunk(images))
        if self.scalp:
            feats, pos = feats[: -self.scalp], pos[: -self.scalp]
        return BackboneOutput(vision_features=feats[-1], vision_pos_enc=pos, backbone_fpn=feats)


def build_image_encoder(cfg: Sam2Config) -> ImageEncoder:
    """The image encoder of a SAM 2 variant, at random init."""
    return ImageEncoder(
        trunk=Hiera(cfg=cfg.hiera), neck=FpnNeck(cfg=cfg.neck), scalp=cfg.neck.scalp
    )
