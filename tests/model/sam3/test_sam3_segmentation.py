"""The segmentation head against Meta's (`segmentation_head`): golden fixture, live oracle."""

from __future__ import annotations

from pathlib import Path

import golden_segmentation as golden
import torch
from sam3_heads_support import assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import assert_parity

from model.sam3.segmentation import SegmentationHead

FIXTURE = Path(__file__).parent / "fixtures" / "segmentation.pt"


def _check(t: dict[str, torch.Tensor]) -> None:
    head = load_seeded(SegmentationHead(), t, golden.PREFIX)
    with torch.inference_mode():
        out = head(
            [t["level0"], t["level1"]],
            t["memory"],
            golden.SIZES[-1],
            t["prompt"],
            t["prompt_mask"],
            t["queries"],
        )
    for name, ours in (("mask_logits", out.mask_logits), ("semantic_logits", out.semantic_logits)):
        assert_informative(t[name], name)
        assert_parity(ours, t[name], name=name)


def test_segmentation_head_matches_golden_fixture():
    _check(torch.load(FIXTURE, weights_only=True))


def test_segmentation_head_matches_live_oracle():
    require_sam3()
    _check(golden.make())


def test_segmentation_head_loads_the_oracle_state_dict_strictly():
    require_sam3()
    oracle = golden.build_oracle()
    ours = SegmentationHead()
    ours.load_state_dict(oracle.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in oracle.state_dict().items()
    }
