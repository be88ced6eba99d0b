"""The fusion encoder against Meta's (`transformer.encoder`): golden fixture and live oracle."""

from __future__ import annotations

from pathlib import Path

import golden_fusion as golden
import torch
from sam3_heads_support import assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import assert_parity

from model.sam3.fusion_encoder import FusionEncoder, FusionEncoderConfig

FIXTURE = Path(__file__).parent / "fixtures" / "fusion.pt"


def _check(t: dict[str, torch.Tensor]) -> None:
    ours = load_seeded(
        FusionEncoder(cfg=FusionEncoderConfig(num_layers=golden.LAYERS)), t, golden.PREFIX
    )
    with torch.inference_mode():
        memory = ours(t["image"], t["image_pos"], t["prompt"], t["prompt_mask"])
    assert_informative(t["memory"], "memory")
    assert_parity(memory, t["memory"], name="memory")


def test_fusion_encoder_matches_golden_fixture():
    _check(torch.load(FIXTURE, weights_only=True))


def test_fusion_encoder_matches_live_oracle():
    require_sam3()
    _check(golden.make())


def test_fusion_encoder_loads_the_oracle_state_dict_strictly():
    require_sam3()
    oracle = golden.build_oracle()
    ours = FusionEncoder(cfg=FusionEncoderConfig(num_layers=golden.LAYERS))
    ours.load_state_dict(oracle.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in oracle.state_dict().items()
    }
