"""Position encodings: 2D sine (neck, memory encoder) and random Fourier (prompts)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinePositionEncoding(nn.Module):
    """Fixed 2D sine/cosine encoding of a feature map's grid, `num_pos_feats` channels.

    Half the channels encode y, half x; coordinates are normalised to (0, 2*pi].
    Results are cached per grid size and dtype because the encoding depends on nothing
    else: a bf16 copy is rounded once, not every frame (at 1024 the finest level's
    256 x 256 x 256 encoding takes 10 ms to cast on a 2-core CPU).
    """

    def __init__(self, *, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError("num_pos_feats must be even")
        self.half = num_pos_feats // 2
        self.temperature = temperature
        self._cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def _grid(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (h, w, device, dtype)
        if key not in self._cache:
            if dtype == torch.float32:
                self._cache[key] = self._build(h, w, device)
            else:
                exact = self._grid(h, w, device, torch.float32)
                with torch.inference_mode(False), torch.no_grad():
                    self._cache[key] = exact.to(dtype)
        return self._cache[key]

    # Built outside inference mode: a cached inference tensor could not be
    # used later by code that records autograd.
    @torch.inference_mode(False)
    @torch.no_grad()
    def _build(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        scale, eps = 2 * math.pi, 1e-6
        y = torch.arange(1, h + 1, dtype=torch.float32, device=device) / (h + eps) * scale
        x = torch.arange(1, w + 1, dtype=torch.float32, device=device) / (w + eps) * scale
        k = torch.arange(self.half, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / self.half)
        pos_y = self._interleave(y[:, None] / dim_t)  # (H, half)
        pos_x = self._interleave(x[:, None] / dim_t)  # (W, half)
        pos = torch.cat(
            (pos_y[:, None, :].expand(h, w, -1), pos_x[None, :, :].expand(h, w, -1)), dim=-1
        )
        return pos.permute(2, 0, 1).contiguous()  # (C, H, W)

    @staticmethod
    def _interleave(angles: torch.Tensor) -> torch.Tensor:
        # sin on even channels, cos on odd ones, kept in pairs.
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(B, *, H, W) -> (B, num_pos_feats, H, W) in `dtype` (computed in float32)."""
        b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        return self._grid(h, w, x.device, dtype)[None].expand(b, -1, -1, -1)


class RandomFourierEncoding(nn.Module):
    """Positional encoding with random spatial frequencies (SAM's prompt encoder).

    The frequency matrix is a buffer named `positional_encoding_gaussian_matrix`
    so the official checkpoints load into it.
    """

    def __init__(self, *, num_pos_feats: int = 64, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )
        # The dense grid's encoding, asked for on every decoder call (sines and cosines
        # of 64 x 64 x 128 phases at 1024, 0.6 ms on a 2-core CPU): kept with the state
        # of the frequency matrix it was computed from.
        self._dense: tuple[tuple, torch.Tensor] | None = None

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates in [0, 1] -> (..., 2 * num_pos_feats)."""
        # In fp32 even under autocast: bf16 phases lose about 0.1 of accuracy.
        with torch.autocast(coords.device.type, enabled=False):
            proj = (2 * coords.float() - 1) @ self.positional_encoding_gaussian_matrix.float()
            proj = 2 * math.pi * proj
            return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of an (h, w) grid at pixel centres -> (C, h, w), computed once
        per grid size and frequency matrix (a new device, dtype or loaded state recomputes
        it). Callers must not modify it in place."""
        matrix = self.positional_encoding_gaussian_matrix
        # Inference tensors keep no version counter; such a matrix cannot change outside
        # inference mode, and the model is not loaded inside it.
        version = None if matrix.is_inference() else matrix._version
        key = (tuple(size), matrix.device, matrix.dtype, matrix.data_ptr(), version)
        if self._dense is None or self._dense[0] != key:
            self._dense = (key, self._dense_grid(size))
        return self._dense[1]

    # Built outside inference mode: a cached inference tensor could not be used later
    # by code that records autograd.
    @torch.inference_mode(False)
    @torch.no_grad()
    def _dense_grid(self, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) coordinates in an image of (h, w) -> (B, N, C)."""
        h, w = image_size
        norm = coords.to(torch.float32) / torch.tensor([w, h], device=coords.device)
        return self._encode(norm)
