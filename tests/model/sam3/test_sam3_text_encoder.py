"""SAM 3's text encoder (`model.sam3.text_encoder`) against the oracle's `VETextEncoder`
at two reduced sizes (`golden_text_encoder.SIZES`), from the golden fixture (CI) and live
where `sam3==0.1.4` is installed; its checkpoint names, fast mode and phrase cache."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from golden_text_encoder import PHRASES, SIZES, build_oracle, run_oracle, text_weights
from sam3_oracle import require_sam3
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam3.text_encoder import TextEncoder, TextEncoderConfig, TextFeatures
from model.sam3.tokenizer import VOCABULARY_PATH, PhraseError

FIXTURE = Path(__file__).parent / "fixtures" / "text_encoder.pt"
OUTPUTS = ("language_features", "language_embeds")


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE, weights_only=True)


@functools.cache
def _weights(size: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        template = TextEncoder(cfg=TextEncoderConfig(**SIZES[size])).state_dict()
    return text_weights(template, size)


def build_ours(size: str, **kwargs) -> TextEncoder:
    """Ours at `SIZES[size]` with the golden weights (built without random init)."""
    with torch.device("meta"):
        encoder = TextEncoder(cfg=TextEncoderConfig(**SIZES[size]), **kwargs)
    weights = {k: v.clone() for k, v in _weights(size).items()}
    encoder.load_state_dict(weights, strict=True, assign=True)
    return encoder.eval()


@pytest.fixture(scope="module")
def ours() -> dict[str, TextEncoder]:
    return {size: build_ours(size) for size in SIZES}


def _assert_not_blank(features: torch.Tensor, padding: torch.Tensor) -> None:
    """Finite, varied, and each phrase's tokens different from the others'."""
    assert torch.isfinite(features).all()
    assert features.std() > 1e-2
    first_tokens = features.transpose(0, 1)[:, 1] if features.shape[0] == 32 else features[:, 1]
    assert torch.cdist(first_tokens, first_tokens).fill_diagonal_(1).min() > 1e-3
    assert padding.any() and not padding.all()


def _compare(out: TextFeatures, expected: dict[str, torch.Tensor], prefix: str = "", **tol) -> None:
    got = out.backbone_out()
    assert torch.equal(got["language_mask"], expected[f"{prefix}language_mask"])
    for name in OUTPUTS:
        if f"{prefix}{name}" in expected:
            assert_parity(got[name], expected[f"{prefix}{name}"], name=name, **tol)


# ------------------------------------------------------------------ golden (CI)


@pytest.mark.parametrize("size", list(SIZES))
def test_golden_parity(ours, golden, size, gemm_route):
    _assert_not_blank(golden[f"{size}_language_features"], golden[f"{size}_language_mask"])
    encoder = ours[size]
    encoder.clear_cache()
    out = encoder.encode(list(PHRASES))
    assert torch.equal(encoder.tokenizer(list(PHRASES)).ids, golden[f"{size}_ids"].long())
    assert out.truncated == (False, False, True, False)
    _compare(out, golden, f"{size}_")


@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
@pytest.mark.parametrize("size", list(SIZES))
def test_golden_fast_mode(golden, size, weights):
    """bf16 autocast, weights held in float32 or in bf16, within bf16 rounding."""
    encoder = build_ours(size).to(getattr(torch, weights))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder.encode(list(PHRASES))
    assert out.features.dtype == torch.bfloat16
    _compare(out, golden, f"{size}_", ulps=BF16_ULPS, eps=BF16_EPS)


def test_bf16_weights_compute_in_bf16_without_autocast(golden):
    encoder = build_ours("small").to(torch.bfloat16)
    out = encoder.encode(list(PHRASES))
    assert out.features.dtype == torch.bfloat16
    _compare(out, golden, "small_", ulps=BF16_ULPS, eps=BF16_EPS)


def test_forward_takes_ids(ours, golden):
    with torch.inference_mode():
        out = ours["small"](golden["small_ids"].long())
    _compare(out, golden, "small_")
    assert out.truncated == ()


def test_forward_rejects_ids_past_the_context(ours):
    with pytest.raises(ValueError, match="token ids"):
        ours["small"](torch.zeros(1, 33, dtype=torch.long))


def test_text_projection_is_not_used(golden):
    """CLIP's `text_projection` is loaded but SAM 3 discards what it computes."""
    encoder = build_ours("small")
    with torch.no_grad():
        encoder.encoder.text_projection.fill_(float("nan"))
    _compare(encoder.encode(list(PHRASES)), golden, "small_")


# ------------------------------------------------------------------ checkpoint names


def test_released_size_names_shapes_and_count():
    with torch.device("meta"):
        encoder = TextEncoder()
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert sum(v.numel() for v in encoder.parameters()) == 353_724_672
    assert len(shapes) == 3 + 12 * 24 + 2 + 2
    expected = {
        "encoder.positional_embedding": (32, 1024),
        "encoder.text_projection": (1024, 512),
        "encoder.token_embedding.weight": (49408, 1024),
        "encoder.transformer.resblocks.23.attn.in_proj_weight": (3072, 1024),
        "encoder.transformer.resblocks.23.attn.in_proj_bias": (3072,),
        "encoder.transformer.resblocks.23.attn.out_proj.weight": (1024, 1024),
        "encoder.transformer.resblocks.23.ln_1.weight": (1024,),
        "encoder.transformer.resblocks.23.ln_2.bias": (1024,),
        "encoder.transformer.resblocks.23.mlp.c_fc.weight": (4096, 1024),
        "encoder.transformer.resblocks.23.mlp.c_proj.weight": (1024, 4096),
        "encoder.ln_final.weight": (1024,),
        "resizer.weight": (256, 1024),
        "resizer.bias": (256,),
    }
    assert {k: shapes[k] for k in expected} == expected


def test_live_oracle_names_load_strictly():
    """The oracle's state dict, at a reduced size and at the released one (on the meta
    device), has our names, order and shapes; its weights load strictly."""
    require_sam3()
    oracle = build_oracle("small")
    ours = TextEncoder(cfg=TextEncoderConfig(**SIZES["small"]))
    assert list(ours.state_dict()) == list(oracle.state_dict())
    ours.load_state_dict(oracle.state_dict(), strict=True)

    from sam3_oracle import import_sam3, on_cpu

    builder = import_sam3()
    with torch.device("meta"), on_cpu():
        full = builder._create_text_encoder(str(VOCABULARY_PATH))
        mine = TextEncoder()
    theirs = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert theirs == {k: tuple(v.shape) for k, v in mine.state_dict().items()}


# ------------------------------------------------------------------ live oracle


@pytest.fixture(scope="module")
def oracles() -> dict[str, torch.nn.Module]:
    require_sam3()
    return {size: build_oracle(size) for size in SIZES}


LIVE_PHRASES = ["person", "a" * 100, "東京タワー 🐶", "the cat's toy", "word " * 40]


@pytest.mark.parametrize("size", list(SIZES))
def test_live_parity(ours, oracles, size, gemm_route):
    expected = run_oracle(oracles[size], LIVE_PHRASES)
    _assert_not_blank(expected["language_features"], expected["language_mask"])
    ours[size].clear_cache()
    out = ours[size].encode(LIVE_PHRASES)
    _compare(out, expected)


@pytest.mark.parametrize("size", list(SIZES))
def test_live_fast_mode(oracles, size):
    expected = run_oracle(oracles[size], LIVE_PHRASES)
    encoder = build_ours(size).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder.encode(LIVE_PHRASES)
    _compare(out, expected, ulps=BF16_ULPS, eps=BF16_EPS)


# ------------------------------------------------------------------ the phrase cache


class _Counter:
    def __init__(self, encoder: TextEncoder) -> None:
        self.rows = 0
        encoder.encoder.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:  # noqa: ANN001
        self.rows += args[0].shape[0]


def test_cache_second_encode_costs_nothing():
    encoder = build_ours("small")
    calls = _Counter(encoder)
    first = encoder.encode(["a red bicycle", "yellow school bus"])
    again = encoder.encode(["yellow school bus", "a red bicycle", "yellow school bus"])
    assert calls.rows == 2 and encoder.cache_hits == 3
    assert torch.equal(again.features[1], first.features[0])
    assert torch.equal(again.features[0], again.features[2])
    # A batch of cached and new phrases computes only the new ones, in one batch.
    mixed = encoder.encode(["person", "a red bicycle", "dog"])
    assert calls.rows == 4
    fresh = build_ours("small").encode(["person", "a red bicycle", "dog"])
    assert torch.equal(mixed.features, fresh.features) and torch.equal(mixed.padding, fresh.padding)


def test_cache_is_bounded_least_recently_used_first():
    encoder = build_ours("small", cache_size=2)
    calls = _Counter(encoder)
    encoder.encode("cat")
    encoder.encode("dog")
    encoder.encode("cat")  # "dog" is now the least recently used
    encoder.encode("bird")
    assert len(encoder._cache) == 2 and calls.rows == 3
    encoder.encode("cat")
    assert calls.rows == 3
    encoder.encode("dog")
    assert calls.rows == 4


def test_cache_keys_on_precision_and_weights():
    encoder = build_ours("small")
    calls = _Counter(encoder)
    exact = encoder.encode("cat")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = encoder.encode("cat")
    assert calls.rows == 2 and fast.features.dtype == torch.bfloat16
    assert exact.features.dtype == torch.float32
    with torch.no_grad():
        encoder.resizer.bias.add_(1.0)
    changed = encoder.encode("cat")
    assert calls.rows == 3
    assert torch.allclose(changed.features, exact.features + 1.0, atol=1e-5)
    encoder.load_state_dict(build_ours("small").state_dict())
    assert torch.allclose(encoder.encode("cat").features, exact.features)
    assert calls.rows == 4


def test_bad_phrases_are_refused_and_leave_the_cache():
    encoder = build_ours("small")
    encoder.encode("cat")
    for phrase in ("", "   ", "\x00\x1b[0m"):
        with pytest.raises(PhraseError, match="empty phrase"):
            encoder.encode(["dog", phrase])
    assert [key[0] for key in encoder._cache] == ["cat"]
    for phrases, message in (([], "no phrase"), (["dog", None], "must be text"), ([["x"]], "text")):
        with pytest.raises(PhraseError, match=message):
            encoder.encode(phrases)


def test_truncation_is_reported():
    encoder = build_ours("small")
    out = encoder.encode(["word " * 100_000 + "end", "cat"])
    assert out.truncated == (True, False)
    assert not out.padding[0].any() and out.padding[1, 3:].all()
