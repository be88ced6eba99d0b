"""Memory encoder: fuses a frame's features with its predicted mask into a memory.

The mask is downsampled to the feature grid by strided convolutions, added to a
projection of the frame's image features, mixed by a few ConvNeXt-style blocks and
compressed to `out_dim` channels. The memory bank stores these features together
with a fixed sine position encoding of the grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.kernels.cpu_gemm import Linear, linear_act
from model.sam2.common import LayerNorm2d
from model.sam2.config import MemoryEncoderConfig
from model.sam2.position_encoding import SinePositionEncoding

# Channel count from which the mask downsampler works channels-last.
_CHANNELS_LAST_FROM = 64


class MaskDownsampler(nn.Module):
    """Strided conv + LayerNorm2d + GELU stages down to the feature stride, then a 1x1 conv.

    Each stage multiplies the channels by `stride**2`, so no information is lost to
    the spatial reduction. Layers live in `encoder.{i}` to match official keys.
    """

    def __init__(
        self,
        *,
        out_dim: int,
        kernel_size: int,
        stride: int,
        padding: int,
        total_stride: int,
    ) -> None:
        super().__init__()
        if stride < 2:
            raise ValueError(f"downsampler stride must be >= 2, got {stride}")
        num_stages = round(math.log(total_stride, stride))
        if stride**num_stages != total_stride:
            raise ValueError(
                f"downsampler total_stride {total_stride} is not a power of stride {stride}"
            )
        layers: list[nn.Module] = []
        in_chans = 1
        for _ in range(num_stages):
            out_chans = in_chans * stride**2
            layers += [
                nn.Conv2d(in_chans, out_chans, kernel_size, stride=stride, padding=padding),
                LayerNorm2d(out_chans),
                nn.GELU(),
            ]
            in_chans = out_chans
        layers.append(nn.Conv2d(in_chans, out_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, out_dim, H / total_stride, W / total_stride), channels-last.

        Channels-last from the first convolution with `_CHANNELS_LAST_FROM` channels on:
        the norms become one fused layer_norm each, and the fuser that follows reads the
        result in that order. The first stages (4 and 16 channels) stay NCHW, where a norm
        over so few channels is a few passes over whole planes, while layer_norm's rows of
        4 values are slow (1,024 x 1,024 masks: 0.47 ms against 2.9 for the first norm).
        """
        x = masks
        for layer in self.encoder:
            x = layer(x)
            if isinstance(layer, nn.Conv2d) and x.shape[1] >= _CHANNELS_LAST_FROM:
                x = x.contiguous(memory_format=torch.channels_last)
        return x


class ConvNextBlock(nn.Module):
    """Depthwise conv, channel LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(
        self,
        *,
        dim: int,
        kernel_size: int,
        padding: int,
        layer_scale_init_value: float,
        use_dwconv: bool,
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(
            dim, dim, kernel_size, padding=padding, groups=dim if use_dwconv else 1
        )
        self.norm = LayerNorm2d(dim)
        # Pointwise convs as Linear layers on channels-last data (official parameter shapes).
        self.pwconv1 = Linear(dim, 4 * dim)
        self.pwconv2 = Linear(4 * dim, dim)
        self.gamma: nn.Parameter | None = None
        if layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.pwconv2(linear_act(y, self.pwconv1.weight, self.pwconv1.bias, "gelu"))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of ConvNeXt blocks in `layers.{i}`."""

    def __init__(self, *, cfg: MemoryEncoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNextBlock(
                dim=cfg.in_dim,
                kernel_size=cfg.fuser_kernel_size,
                padding=cfg.fuser_padding,
                layer_scale_init_value=cfg.fuser_layer_scale_init_value,
                use_dwconv=cfg.fuser_use_dwconv,
            )
            for _ in range(cfg.fuser_num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Turns (image features, mask logits) of one frame into a memory and its position code."""

    def __init__(self, *, cfg: MemoryEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mask_downsampler = MaskDownsampler(
            out_dim=cfg.in_dim,
            kernel_size=cfg.downsampler_kernel_size,
            stride=cfg.downsampler_stride,
            padding=cfg.downsampler_padding,
            total_stride=cfg.downsampler_total_stride,
        )
        self.pix_feat_proj = nn.Conv2d(cfg.in_dim, cfg.in_dim, kernel_size=1)
        self.fuser = Fuser(cfg=cfg)
        self.out_proj: nn.Module = nn.Identity()
        if cfg.out_dim != cfg.in_dim:
            self.out_proj = nn.Conv2d(cfg.in_dim, cfg.out_dim, kernel_size=1)
        self.position_encoding = SinePositionEncoding(num_pos_feats=cfg.out_dim)

    def forward(
        self,
        pix_feat: torch.Tensor,
        masks: torch.Tensor,
        *,
        skip_mask_sigmoid: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode one memory per batch entry (one entry per object).

        pix_feat: (B, in_dim, h, w) image features of the frame.
        masks: (B, 1, H, W) mask logits with H = h * total_stride (probabilities in [0, 1]
            when `skip_mask_sigmoid` is set, as the tracker passes its scaled sigmoid).
        Returns (features (B, out_dim, h, w), position encoding (B, out_dim, h, w)).
        """
        self._check_inputs(pix_feat, masks)
        # Squashing logits keeps the input close to the binary masks seen in training.
        probs = masks if skip_mask_sigmoid else torch.sigmoid(masks)
        # The objects of one frame share its features (the tracker passes them expanded
        # over the batch): their projection is then computed once, not once per object.
        if pix_feat.shape[0] > 1 and pix_feat.stride(0) == 0:
            proj = self.pix_feat_proj(pix_feat[:1].to(probs.device))
        else:
            proj = self.pix_feat_proj(pix_feat.to(probs.device))
        if probs.device.type == "cpu" and probs.shape[0] > 1:
            # One object at a time on CPU: an object's activations (a 4 MB mask at 1024,
            # 16 MB after the first conv) stay in cache, ten objects' do not (10 objects
            # at 1024, 2-core AMD EPYC: 38 ms an object against 68 ms batched).
            parts = [
                self._fuse(proj[i : i + 1] if len(proj) > 1 else proj, probs[i : i + 1])
                for i in range(len(probs))
            ]
            x = torch.cat(parts)
        else:
            x = self._fuse(proj, probs)
        pos = self.position_encoding(x, x.dtype)
        return x, pos

    def _fuse(self, proj: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """(B or 1, in_dim, h, w) projected features and (B, 1, H, W) mask probabilities
        -> memories."""
        mask_feat = self.mask_downsampler(probs)  # (B, in_dim, h, w), channels-last
        # The fuser runs channels-last: its blocks' pointwise layers then read the tokens
        # in place and their residual adds stay in one layout (2 blocks at 1024: 22 ms
        # each against 34 in NCHW). Returned contiguous, as every caller stores it.
        x = mask_feat + proj
        return self.out_proj(self.fuser(x)).contiguous()  # (B, out_dim, h, w)

    def _check_inputs(self, pix_feat: torch.Tensor, masks: torch.Tensor) -> None:
        if pix_feat.ndim != 4 or pix_feat.shape[1] != self.cfg.in_dim:
            raise ValueError(
                f"pix_feat must be (B, {self.cfg.in_dim}, h, w), got {tuple(pix_feat.shape)}"
            )
        if masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[0] != pix_feat.shape[0]:
            raise ValueError(
                f"masks must be (B, 1, H, W) with B={pix_feat.shape[0]}, got {tuple(masks.shape)}"
            )
        stride = self.cfg.downsampler_total_stride
        expected = (pix_feat.shape[2] * stride, pix_feat.shape[3] * stride)
        if tuple(masks.shape[2:]) != expected:
            raise ValueError(
                f"masks must be {expected[0]}x{expected[1]} ({stride}x the feature grid), "
                f"got {masks.shape[2]}x{masks.shape[3]}"
            )
