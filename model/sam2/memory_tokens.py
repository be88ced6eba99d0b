"""Memories as memory attention's tokens: spatial memories and object pointers.

What `Sam2Model.condition_on_memories` attends to, built from the tensors the tracking
session passes in: each remembered frame's memory features with their position and
temporal encodings, and the object pointers of past frames with their temporal-distance
encodings (the reference's `_prepare_memory_conditioned_features`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from model.sam2.config import Sam2Config
from model.sam2.types import Memory


def sine_encoding_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0):
    """(N,) float positions -> (N, dim): sines in the first half, cosines in the second."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=positions.device)
    freq = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / half)
    angles = positions[:, None] / freq
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def spatial_memory_tokens(
    memories: Sequence[tuple[int, Memory]],
    position_encoding: Callable[[torch.Tensor], torch.Tensor],
    tpos_enc: torch.Tensor,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per memory, (hw, B, mem_dim) tokens and their position + temporal encodings.

    memories: (temporal position 0..num_maskmem-1, memory); tpos_enc: (num_maskmem, 1, 1,
    mem_dim), the model's `maskmem_tpos_enc`.
    """
    num_maskmem = tpos_enc.shape[0]
    tokens, tokens_pos = [], []
    for t_pos, memory in memories:
        feats = memory.features.to(device, dtype)
        tokens.append(feats.flatten(2).permute(2, 0, 1))  # (hw, B, mem)
        enc = position_encoding(feats).to(dtype).flatten(2).permute(2, 0, 1)
        tokens_pos.append(enc + tpos_enc[num_maskmem - t_pos - 1])
    return tokens, tokens_pos


def pointer_tokens(
    pointers: Sequence[tuple[int, torch.Tensor]],
    max_pointers: int,
    b: int,
    cfg: Sam2Config,
    tpos_proj: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Object pointers as (P * C / mem_dim, B, mem_dim) tokens and their encodings.

    pointers: (temporal distance, (B, C) pointer); tpos_proj: the model's
    `obj_ptr_tpos_proj`.
    """
    c, mem = cfg.hidden_dim, cfg.mem_dim
    ptrs = torch.stack([p.to(device) for _, p in pointers])  # (P, B, C)
    if cfg.add_tpos_enc_to_obj_ptrs:
        dist = torch.tensor([d for d, _ in pointers], device=device, dtype=torch.float32)
        # max(…, 1): a one-frame video would otherwise divide by zero.
        dim = c if cfg.proj_tpos_enc_in_obj_ptrs else mem
        enc = sine_encoding_1d(dist / max(max_pointers - 1, 1), dim)
        enc = tpos_proj(enc).unsqueeze(1).expand(-1, b, mem)
    else:
        enc = ptrs.new_zeros(len(pointers), b, mem)
    if mem < c:
        # Each C-wide pointer becomes C / mem_dim tokens of the memory width.
        split = c // mem
        ptrs = ptrs.reshape(-1, b, split, mem).permute(0, 2, 1, 3).flatten(0, 1)
        enc = enc.repeat_interleave(split, dim=0)
    return ptrs, enc
