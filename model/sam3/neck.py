"""SAM 3's detector neck: a simple feature pyramid (ViTDet style) from the ViT's one map.

The trunk's 72 x 72 map (at 1008 px, stride 14) is taken to four scales, each by its
own branch, then projected to `d_model` channels by a 1x1 and a 3x3 convolution:
- x4 (288 x 288): two stride-2 transposed 2x2 convolutions with a GELU between them,
  halving the channels each time;
- x2 (144 x 144): one transposed convolution;
- x1 (72 x 72): the map itself;
- x0.5 (36 x 36): a 2x2 max-pool.
The detector drops the coarsest `scalp` levels (one: the x0.5 level is never used); they
are not computed here at all. Each kept level comes with its 2-D sine position encoding
(`model.sam2.position_encoding.SinePositionEncoding`, as SAM 2's neck uses).

`VisionBackbone` is the trunk and the neck together, as the checkpoint holds them under
`detector.backbone.vision_backbone.` (`trunk.*`, `convs.{i}.*`). The checkpoint also
holds a second set of branches there, `sam2_convs.*`, which feed SAM 3's own video
tracker and not the detector: `UNUSED_CHECKPOINT_PREFIXES` names them for the loader.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from model.sam2.position_encoding import SinePositionEncoding
from model.sam3.cancel import poll
from model.sam3.vit import ViT, ViTConfig

# Keys under `backbone.vision_backbone.` in the checkpoint that the detector does not use.
UNUSED_CHECKPOINT_PREFIXES: tuple[str, ...] = ("sam2_convs.",)

_SCALES = (4.0, 2.0, 1.0, 0.5)


@dataclass(frozen=True)
class NeckConfig:
    """The neck's sizes; the defaults are SAM 3's released ones."""

    d_model: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)
    # The coarsest levels dropped after the neck (and so never computed).
    scalp: int = 1

    def validate(self) -> None:
        unknown = [s for s in self.scale_factors if s not in _SCALES]
        if unknown:
            raise ValueError(f"scale factors {unknown} are not among {_SCALES}")
        if not 0 <= self.scalp < len(self.scale_factors):
            raise ValueError(
                f"scalp must be in [0, {len(self.scale_factors) - 1}], got {self.scalp}"
            )
        if self.d_model % 2:
            raise ValueError(f"d_model must be even (sine encodings), got {self.d_model}")


@dataclass(frozen=True)
class VisionFeatures:
    """A frame's pyramid for the detector heads, high resolution first.

    At 1008 px with d_model 256: backbone_fpn and vision_pos_enc are
    [(B, 256, 288, 288), (B, 256, 144, 144), (B, 256, 72, 72)], and vision_features is
    the last (coarsest kept) level. Position encodings have their level's dtype.
    """

    vision_features: torch.Tensor
    vision_pos_enc: tuple[torch.Tensor, ...]
    backbone_fpn: tuple[torch.Tensor, ...]


def _branch(scale: float, dim: int, d_model: int) -> nn.Sequential:
    """One pyramid level's convolutions, named as the checkpoint names them."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    out_dim = dim
    if scale == 4.0:
        layers["dconv_2x2_0"] = nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2)
        layers["gelu"] = nn.GELU()
        layers["dconv_2x2_1"] = nn.ConvTranspose2d(dim // 2, dim // 4, kernel_size=2, stride=2)
        out_dim = dim // 4
    elif scale == 2.0:
        layers["dconv_2x2"] = nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2)
        out_dim = dim // 2
    elif scale == 0.5:
        layers["maxpool_2x2"] = nn.MaxPool2d(kernel_size=2, stride=2)
    layers["conv_1x1"] = nn.Conv2d(out_dim, d_model, kernel_size=1)
    layers["conv_3x3"] = nn.Conv2d(d_model, d_model, kernel_size=3, padding=1)
    return nn.Sequential(layers)


class VisionBackbone(nn.Module):
    """Normalised images -> `VisionFeatures`: the ViT trunk, then the pyramid branches."""

    def __init__(self, *, trunk: ViT, cfg: NeckConfig) -> None:
        super().__init__()
        cfg.validate()
        self.trunk = trunk
        self.cfg = cfg
        self.convs = nn.ModuleList(
            _branch(scale, trunk.channels, cfg.d_model) for scale in cfg.scale_factors
        )
        self.position_encoding = SinePositionEncoding(num_pos_feats=cfg.d_model)
        self.num_levels = len(cfg.scale_factors) - cfg.scalp

    def forward(self, images: torch.Tensor) -> VisionFeatures:
        """(B, 3, S, S) normalised images (`model.sam3.vit.preprocess`) -> the kept levels."""
        (x,) = self.trunk(images)  # (B, C, S / 14, S / 14), channels-last
        feats = []
        for branch in self.convs[: self.num_levels]:
            level = x
            for layer in branch:  # the x4 branch's convolutions are about a second exact
                poll()
                level = layer(level)
            feats.append(level)
        pos = tuple(self.position_encoding(f, f.dtype) for f in feats)
        return VisionFeatures(
            vision_features=feats[-1], vision_pos_enc=pos, backbone_fpn=tuple(feats)
        )


def build_vision_backbone(
    vit: ViTConfig | None = None, neck: NeckConfig | None = None
) -> VisionBackbone:
    """The trunk and neck at random init, at the released sizes unless configs are given."""
    return VisionBackbone(trunk=ViT(cfg=vit or ViTConfig()), cfg=neck or NeckConfig())
