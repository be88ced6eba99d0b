"""What makes another prompt on a cached frame cheap computes what it replaces: the
pixel decoder's per-frame level convolutions and phase convolutions, the fusion encoder's
prompt-free first self-attention, the text encoder on the real tokens only, fast mode's
bf16 blocks for long unmasked attention; and exemplar points (`find(points=...)`) against
the oracle's model with a point prompt (golden fixture and live)."""

from __future__ import annotations

import golden_find_points as golden_points
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam3_oracle import require_sam3
from test_sam3_find import FIXTURE, _golden, check_case, seeded_finder
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.kernels import blocked_attention
from model.sam3.common import MultiheadAttention
from model.sam3.fusion_encoder import FusionEncoder, FusionEncoderConfig
from model.sam3.segmentation import PixelDecoder, conv_upsampled
from model.sam3.text_encoder import TextEncoder, TextEncoderConfig

POINTS_FIXTURE = FIXTURE.parent / "find_points.pt"


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_phase_convolutions_equal_a_convolution_of_the_upsampled_map(bias, channels_last):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 5, 7, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(8, 16, 3, 3, generator=gen)
    b = torch.randn(8, generator=gen) if bias else None
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, b, padding=1)
    assert expected.std() > 1
    assert_parity(conv_upsampled(x, weight, b), expected, name="phase convolutions")


def test_pixel_decoder_with_the_frames_level_convolutions_is_the_same():
    torch.manual_seed(0)
    decoder = PixelDecoder(d_model=32, stages=3, norm_groups=8).eval()
    levels = [torch.randn(1, 32, 24, 24), torch.randn(1, 32, 12, 12)]
    coarse = torch.randn(1, 32, 6, 6)
    with torch.inference_mode():
        expected = decoder(coarse, levels)
        got = decoder(coarse, levels, decoder.project_levels(levels))
    assert expected.std() > 0.1
    assert_parity(got, expected, name="pixel decoder")


def test_fusion_encoder_from_its_kept_start_is_the_same():
    torch.manual_seed(0)
    encoder = FusionEncoder(cfg=FusionEncoderConfig(d_model=32, num_heads=4, num_layers=2)).eval()
    image, pos = torch.randn(1, 32, 6, 6), torch.randn(1, 32, 6, 6)
    prompt, mask = torch.randn(1, 5, 32), torch.tensor([[False] * 4 + [True]])
    with torch.inference_mode():
        expected = encoder(image, pos, prompt, mask)
        got = encoder(image, pos, prompt, mask, encoder.start(image, pos))
    assert expected.std() > 0.1 and torch.equal(got, expected)


def test_trimmed_text_features_are_the_real_tokens_features():
    torch.manual_seed(0)
    encoder = TextEncoder(cfg=TextEncoderConfig(width=64, heads=4, layers=2)).eval()
    phrases = ["a red bicycle", "cat"]
    full = encoder.encode(phrases)
    trimmed = encoder.encode(phrases, trim=True)
    length = int((~full.padding).sum(1).max())
    assert trimmed.features.shape[1] == length < full.features.shape[1]
    assert torch.equal(trimmed.padding, full.padding[:, :length])
    assert_parity(trimmed.features, full.features[:, :length], name="trimmed features")
    # Phrases trimmed in separate calls come back padded to the longest, as padding.
    encoder.clear_cache()
    short = encoder.encode("cat", trim=True)
    both = encoder.encode(["cat", "a red bicycle"], trim=True)
    assert short.features.shape[1] < both.features.shape[1] == length
    assert both.padding[0, short.features.shape[1] :].all()


def test_fast_mode_long_unmasked_attention_takes_bf16_blocks(monkeypatch):
    torch.manual_seed(0)
    attn = MultiheadAttention(embed_dim=64, num_heads=2).eval()
    x = torch.randn(1, 4096, 64)
    calls = []
    original = blocked_attention.blocked_attention
    monkeypatch.setattr(
        blocked_attention, "blocked_attention", lambda *a: calls.append(1) or original(*a)
    )
    with torch.inference_mode():
        expected = attn(x, x, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = attn(x, x, x)
    from model.kernels.bf16_attention import fused_kernel_has_amx

    assert len(calls) == (0 if fused_kernel_has_amx() else 1)
    assert expected.std() > 1e-3
    assert_parity(got.float(), expected, ulps=BF16_ULPS, eps=BF16_EPS, name="bf16 attention")


def test_another_prompt_on_a_cached_frame_skips_the_frames_work():
    t = torch.load(FIXTURE, weights_only=True)
    finder = seeded_finder(t)
    calls = [0]
    first_self = finder.transformer.encoder.layers[0].self_attn
    first_self.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    finder.find(t["frame"], "a red bicycle", threshold=0.0)
    finder.find(t["frame"], "a dog", threshold=0.0)
    finder.find(t["frame"], "a dog", boxes=[[8, 10, 40, 50]], threshold=0.0)
    assert calls[0] == 1


POINTS = np.array([[20.0, 30.0], [60.0, 15.0]])
POINT_LABELS = np.array([True, False])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": [[-1, 5]]}, "not inside"),
        ({"points": [[5, 61]]}, "not inside"),
        ({"points": [[5, 5, 5]]}, "(M, 2)"),
        ({"points": [["a", 5]]}, "numbers"),
        ({"points": [[5, float("nan")]]}, "finite"),
        ({"points": [[5, 5]] * 17}, "at most 16"),
        ({"points": [[5, 5]], "point_labels": [1, 0]}, "2 point labels for 1 points"),
        ({"point_labels": [True]}, "without points"),
    ],
)
def test_bad_points_are_one_line_value_errors(kwargs: dict, message: str):
    _, finder = _golden()
    with pytest.raises(ValueError) as err:
        finder.find(np.zeros((60, 80, 3), np.uint8), "cat", **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_points_alone_change_what_is_found():
    t, finder = _golden()
    visual = finder.find(t["frame"], boxes=[[8, 10, 40, 50]], threshold=0.0)
    clicked = finder.find(t["frame"], points=POINTS, point_labels=POINT_LABELS, threshold=0.0)
    assert torch.isfinite(clicked.scores).all() and clicked.scores.std() > 1e-4
    assert not torch.allclose(visual.scores.sort().values, clicked.scores.sort().values)


def _check_points(t: dict[str, torch.Tensor]) -> None:
    finder = seeded_finder(t)
    got = finder.find(
        t["frame"],
        golden_points.PHRASE,
        points=np.array(golden_points.POINTS),
        point_labels=np.array(golden_points.POINT_LABELS),
        threshold=0.0,
    )
    expected = {name: t[f"points/{name}"] for name in ("scores", "boxes", "masks", "uncertain")}
    order = expected["scores"].argsort(descending=True, stable=True)
    check_case(got, {name: value[order] for name, value in expected.items()})
    # The points change the prompt, so they change what is found.
    text_only = finder.find(t["frame"], golden_points.PHRASE, threshold=0.0)
    assert not torch.allclose(text_only.scores, got.scores)


def test_points_match_the_golden_fixture():
    _check_points(torch.load(POINTS_FIXTURE, weights_only=True))


def test_points_match_the_live_oracle():
    """The processor has no point method; its model takes points through the geometric
    prompt it keeps (see `golden_find_points`)."""
    require_sam3()
    _check_points(golden_points.make())
