"""Golden fixture: the oracle's fusion encoder (`transformer.encoder`), 2 layers, d 256,
on a 5 x 6 grid for a batch of two prompts (the second padded)."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params, seed_oracle
from sam3_oracle import import_sam3, on_cpu, shrunk

PREFIX = "transformer.encoder."
LAYERS = 2
B, C, H, W, S = 2, 256, 5, 6, 7


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(26)
    mask = torch.zeros(B, S, dtype=torch.bool)
    mask[1, 4:] = True
    return {
        "image": torch.randn(B, C, H, W, generator=gen),
        "image_pos": torch.randn(B, C, H, W, generator=gen) * 0.5,
        "prompt": torch.randn(B, S, C, generator=gen),
        "prompt_mask": mask,
    }


def build_oracle():
    mb = import_sam3()
    with on_cpu(), shrunk(mb, TransformerEncoderFusion={"num_layers": LAYERS}):
        encoder = mb._create_transformer_encoder()
    return seed_oracle(encoder, PREFIX)


def make() -> dict[str, torch.Tensor]:
    encoder = build_oracle()
    t = inputs()
    seq = lambda x: x.flatten(2).permute(2, 0, 1)  # noqa: E731 - (B, C, H, W) -> (HW, B, C)
    with on_cpu(), torch.no_grad():
        out = encoder(
            src=[seq(t["image"])],
            src_key_padding_mask=None,
            src_pos=[seq(t["image_pos"])],
            prompt=t["prompt"].transpose(0, 1),
            prompt_pos=torch.zeros(S, B, C),
            prompt_key_padding_mask=t["prompt_mask"],
            feat_sizes=[(H, W)],
        )
    return {
        **t,
        "memory": out["memory"].transpose(0, 1).contiguous(),
        **oracle_params(encoder, PREFIX),
    }
