"""Golden fixture: the parameter names and shapes of the oracle's image model after its
backbone at Meta's default size, i.e. those of the official `sam3.pt` under `detector.`
for the geometry encoder, transformer, scoring and segmentation head."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params


def make() -> dict[str, torch.Tensor]:
    # As scripts/make_sam3_fixtures.py imports the golden modules (tests run none of this).
    from tests.model.sam3.golden_heads import build_oracle

    return oracle_params(build_oracle(full_size=True), "")
