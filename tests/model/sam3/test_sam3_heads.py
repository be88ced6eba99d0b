"""The detector heads chained for one image and one prompt against Meta's
`Sam3Image.forward_grounding`: golden fixture and live oracle."""

from __future__ import annotations

import functools
from pathlib import Path

import golden_heads as golden
import torch
from sam3_heads_support import PARAM, assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam3.decoder import DecoderConfig
from model.sam3.fusion_encoder import FusionEncoderConfig
from model.sam3.heads import DetectorHeads, HeadsConfig, Prompt

FIXTURE = Path(__file__).parent / "fixtures" / "heads.pt"
CFG = HeadsConfig(
    fusion=FusionEncoderConfig(num_layers=golden.LAYERS),
    decoder=DecoderConfig(num_layers=golden.LAYERS, num_queries=golden.QUERIES),
)


def _prompts(t: dict[str, torch.Tensor]) -> dict[str, Prompt]:
    return {
        "text": Prompt(text=t["text"], text_mask=t["text_mask"]),
        "exemplar": Prompt(
            text=t["text"], text_mask=t["text_mask"], boxes=t["boxes"], box_labels=t["box_labels"]
        ),
    }


@functools.cache
def _golden() -> tuple[dict[str, torch.Tensor], DetectorHeads]:
    """The fixture and ours loaded from it, built once for the tests that read them."""
    t = torch.load(FIXTURE, weights_only=True)
    return t, load_seeded(DetectorHeads(cfg=CFG), t, "")


def _check(t: dict[str, torch.Tensor], heads: DetectorHeads | None = None) -> None:
    heads = heads or load_seeded(DetectorHeads(cfg=CFG), t, "")
    levels = [t[f"level{i}"] for i in range(len(golden.SIZES))]
    prompts = _prompts(t)
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
    _check(*_golden())


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


def test_heads_in_bf16_autocast_stay_within_bf16_rounding_of_the_oracle():
    """Fast mode (bf16 autocast, `model.engine.precision`) runs the same code."""
    t, heads = _golden()
    levels = [t[f"level{i}"] for i in range(len(golden.SIZES))]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = heads(levels, t["image_pos"], _prompts(t)["exemplar"])
    for name in golden.OUTPUTS:
        expected = t[f"exemplar/{name}"]
        assert_parity(getattr(out, name), expected, ulps=BF16_ULPS, eps=BF16_EPS, name=name)


def test_default_size_heads_have_the_official_checkpoint_names_and_shapes():
    """At Meta's default configuration, ours holds exactly the parameters the oracle's
    `Sam3Image` (the official `sam3.pt` under `detector.`) holds for these parts."""
    t = torch.load(FIXTURE.with_name("heads_default.pt"), weights_only=True)
    official = {k.removeprefix(PARAM): tuple(v.tolist()) for k, v in t.items()}
    ours = {k: tuple(v.shape) for k, v in DetectorHeads().state_dict().items()}
    assert len(official) > 300
    assert ours == official
    assert ours["transformer.decoder.query_embed.weight"] == (200, 256)
    assert sum(1 for k in ours if k.endswith("linear1.weight")) == 6 + 6 + 3


def test_masks_of_selected_queries_are_those_rows_of_all_masks():
    """`segment` for a few queries per row (as `find` asks for those above a threshold)
    gives the same masks as for all of them."""
    t, heads = _golden()
    levels = [t[f"level{i}"] for i in range(len(golden.SIZES))]
    with torch.inference_mode():
        found = heads.detect(levels[-1], t["image_pos"], _prompts(t)["exemplar"])
        select = found.scores.topk(3, dim=1).indices  # (1, 3)
        some = heads.segment(found, levels[:-1], select)
    expected = t["exemplar/mask_logits"][0, select[0]][None]
    assert some.mask_logits.shape == (1, 3, *golden.SIZES[0])
    assert_parity(some.mask_logits, expected, name="selected masks")
    assert_parity(some.semantic_logits, t["exemplar/semantic_logits"], name="semantic")
