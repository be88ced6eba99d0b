"""Golden fixture: the oracle's segmentation head (`segmentation_head`, d 256, 3 stages) on
neck levels of 8 x 12, 4 x 6 and 2 x 3 for a batch of two prompts (the second padded)."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params, seed_oracle
from sam3_oracle import import_sam3, on_cpu

PREFIX = "segmentation_head."
B, C, Q, S = 2, 256, 12, 7
SIZES = ((8, 12), (4, 6), (2, 3))


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2600)
    mask = torch.zeros(B, S, dtype=torch.bool)
    mask[1, 5:] = True
    h, w = SIZES[-1]
    return {
        "level0": torch.randn(B, C, *SIZES[0], generator=gen),
        "level1": torch.randn(B, C, *SIZES[1], generator=gen),
        "memory": torch.randn(B, h * w, C, generator=gen),
        "prompt": torch.randn(B, S, C, generator=gen),
        "prompt_mask": mask,
        "queries": torch.randn(B, Q, C, generator=gen),
    }


def build_oracle():
    mb = import_sam3()
    with on_cpu():
        head = mb._create_segmentation_head()
    return seed_oracle(head, PREFIX)


def make() -> dict[str, torch.Tensor]:
    head = build_oracle()
    t = inputs()
    coarse = torch.zeros(B, C, *SIZES[-1])  # replaced by the fused tokens in the oracle
    with on_cpu(), torch.no_grad():
        out = head(
            backbone_feats=[t["level0"], t["level1"], coarse],
            obj_queries=t["queries"][None],
            image_ids=torch.arange(B),
            encoder_hidden_states=t["memory"].transpose(0, 1),
            prompt=t["prompt"].transpose(0, 1),
            prompt_mask=t["prompt_mask"],
        )
    return {
        **t,
        "mask_logits": out["pred_masks"].contiguous(),
        "semantic_logits": out["semantic_seg"].contiguous(),
        **oracle_params(head, PREFIX),
    }
