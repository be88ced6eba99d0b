"""FPN neck: projects every trunk stage to `d_model` channels with top-down fusion."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from model.sam2.config import NeckConfig
from model.sam2.position_encoding import SinePositionEncoding

_INTERP_MODES = ("nearest", "bilinear", "bicubic")


class FpnNeck(nn.Module):
    """Feature pyramid without output convs; top-down fusion only at chosen levels.

    Levels are numbered high resolution first (level 0 = stride 4). Lateral convs
    are stored lowest resolution first, the order of the official `convs.{i}` keys.
    """

    def __init__(self, *, cfg: NeckConfig) -> None:
        super().__init__()
        if cfg.fpn_interp_model not in _INTERP_MODES:
            raise ValueError(
                f"fpn_interp_model must be one of {_INTERP_MODES}, got {cfg.fpn_interp_model!r}"
            )
        self.backbone_channel_list = tuple(cfg.backbone_channel_list)
        self.convs = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(c, cfg.d_model, kernel_size=1)))
            for c in self.backbone_channel_list
        )
        self.top_down_levels = frozenset(cfg.fpn_top_down_levels)
        self.interp_mode = cfg.fpn_interp_model
        self.position_encoding = SinePositionEncoding(num_pos_feats=cfg.d_model)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Trunk stages [(B, C_i, H_i, W_i)] high-res first -> features and position
        encodings, both [(B, d_model, H_i, W_i)] high-res first.

        Position encodings take the dtype of their level's features.
        """
        n = len(self.convs)
        if len(xs) != n:
            raise ValueError(f"expected {n} feature maps, got {len(xs)}")
        feats, pos = [], []  # built lowest resolution first, reversed at the end
        prev = None
        for conv, level in zip(self.convs, range(n - 1, -1, -1), strict=True):
            lateral = conv(xs[level])  # (B, d_model, H_l, W_l)
            if prev is not None and level in self.top_down_levels:
                prev = lateral + self._upsample(prev, lateral.shape[-2:])
            else:
                prev = lateral
            feats.append(prev)
            pos.append(self.position_encoding(prev, prev.dtype))
        return feats[::-1], pos[::-1]

    def _upsample(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        # Upsampling in float32, as the released models do, so under autocast
        # the fused levels come out float32 just like the reference's.
        align = None if self.interp_mode == "nearest" else False
        return F.interpolate(
            x.to(torch.float32), size=size, mode=self.interp_mode, align_corners=align
        )
