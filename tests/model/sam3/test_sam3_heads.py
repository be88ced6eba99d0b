"""The detector heads chained for one image and one prompt against Meta's
`Sam3Image.forward_grounding`: golden fixture and live oracle."""

from __future__ import annotations

from pathlib import Path

import golden_heads as golden
import torch
from sam3_heads_support import assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import assert_parity

from model.sam3.decoder import DecoderConfig
from model.sam3.fusion_encoder import FusionEncoderConfig
from model.sam3.heads import DetectorHeads, HeadsConfig, Prompt

FIXTURE = Path(__file__).parent / "fixtures" / "heads.pt"
CFG = HeadsConfig(
    fusion=FusionEncoderConfig(num_layers=golden.LAYERS),
    decoder=DecoderConfig(num_layers=golden.LAYERS, num_queries=golden.QUERIES),
)


def _check(t: dict[str, torch.Tensor]) -> None:
    heads = load_seeded(DetectorHeads(cfg=CFG), t, "")
    levels = [t[f"level{i}"] for i in range(len(golden.SIZES))]
    prompts = {
        "text": Prompt(text=t["text"], text_mask=t["text_mask"]),
        "exemplar": Prompt(
            text=t["text"], text_mask=t["text_mask"], boxes=t["boxes"], box_labels=t["box_labels"]
        ),
    }
    for case in golden.CASES:
        with torch.inference_mode():
            out = heads(levels, t["image_pos"], prompts[case])
        for name in golden.OUTPUTS:
            expected = t[f"{case}/{name}"]
            if name != "presence_logit":  # one value per image
                assert_informative(expected, f"{case}/{name}")
            assert torch.isfinite(expected).all()
            assert_parity(getattr(out, name), expected, name=f"{case}/{name}")
    # The exemplar changes the prompt, so it must change what is found.
    assert not torch.allclose(t["text/logits"], t["exemplar/logits"])


def test_heads_match_golden_fixture():
    _check(torch.load(FIXTURE, weights_only=True))


def test_heads_match_live_oracle():
    require_sam3()
    _check(golden.make())


def test_heads_load_the_oracle_state_dict_strictly():
    require_sam3()
    oracle = golden.build_oracle()
    ours = DetectorHeads(cfg=CFG)
    ours.load_state_dict(oracle.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in oracle.state_dict().items()
    }
