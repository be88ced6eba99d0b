"""Small files that look like an official checkpoint to the variant detector."""

from __future__ import annotations

import io

import torch


def fake_checkpoint_bytes(*, pad_bytes: int = 3 << 20) -> bytes:
    """A `{"model": ...}` file that `detect_variant` reads as sam2.1-tiny, ~pad_bytes long.

    Downloads are served from a local test server; the download manager checks that
    what arrived is the checkpoint it asked for, so the payload must be one.
    """
    state = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(96, 3, 7, 7)}
    for block in range(12):
        state[f"image_encoder.trunk.blocks.{block}.norm1.weight"] = torch.zeros(1)
    state["no_obj_embed_spatial"] = torch.zeros(1, 64)
    state["padding"] = torch.arange(pad_bytes // 4, dtype=torch.float32)
    buffer = io.BytesIO()
    torch.save({"model": state}, buffer)
    return buffer.getvalue()
