"""The DETR decoder and dot-product scoring against Meta's: golden fixture, live oracle."""

from __future__ import annotations

from pathlib import Path

import golden_decoder as golden
import torch
from sam3_heads_support import assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import assert_parity

from model.sam3.decoder import Decoder, DecoderConfig
from model.sam3.scoring import DotProductScoring, detection_scores

FIXTURE = Path(__file__).parent / "fixtures" / "decoder.pt"
CFG = DecoderConfig(num_layers=golden.LAYERS, num_queries=golden.QUERIES)


def _check(t: dict[str, torch.Tensor]) -> None:
    decoder = load_seeded(Decoder(cfg=CFG), t, golden.DECODER)
    scoring = load_seeded(DotProductScoring(), t, golden.SCORING)
    with torch.inference_mode():
        out = decoder(
            t["memory"], t["memory_pos"], (golden.H, golden.W), t["prompt"], t["prompt_mask"]
        )
        logits = scoring(out.hidden, t["prompt"], t["prompt_mask"])
        scores = detection_scores(logits[-1], out.presence_logits[-1])
    for name, ours in (
        ("hidden", out.hidden),
        ("boxes", out.boxes),
        ("presence_logits", out.presence_logits),
        ("logits", logits),
        ("scores", scores),
    ):
        assert_informative(t[name], name)
        assert_parity(ours, t[name], name=name)


def test_decoder_and_scoring_match_golden_fixture():
    _check(torch.load(FIXTURE, weights_only=True))


def test_decoder_and_scoring_match_live_oracle():
    require_sam3()
    _check(golden.make())


def test_decoder_and_scoring_load_the_oracle_state_dicts_strictly():
    require_sam3()
    decoder, scoring = golden.build_oracle()
    for ours, oracle in ((Decoder(cfg=CFG), decoder), (DotProductScoring(), scoring)):
        ours.load_state_dict(oracle.state_dict(), strict=True)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in oracle.state_dict().items()
        }
