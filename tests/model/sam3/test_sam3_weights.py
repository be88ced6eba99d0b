"""Fast mode's finder held in bf16 (`Sam3Finder.hold_in`, `finder_from_state_dict(dtype=)`):
which weights convert, the memory it saves, exact mode refused, and fast-mode parity against
exact and against the oracle's golden outputs at bf16 tolerances."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_sam3_find import FIXTURE, _by_score, find_case, seeded_finder
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam3.checkpoint import finder_from_state_dict, load_finder
from model.sam3.finder import Sam3Finder
from model.sam3.weights import HELD_MIN_ELEMENTS, convert_state, hold_in, is_held_low


def _golden_bf16() -> tuple[dict[str, torch.Tensor], Sam3Finder]:
    t = torch.load(FIXTURE, weights_only=True)
    return t, seeded_finder(t).hold_in(torch.bfloat16)


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def test_hold_in_bf16_converts_the_large_weights_and_keeps_norms_biases_and_rope():
    t = torch.load(FIXTURE, weights_only=True)
    finder = seeded_finder(t)
    before = _param_bytes(finder)
    pointers = {name: p for name, p in finder.named_parameters()}
    finder.hold_in(torch.bfloat16)
    params = dict(finder.named_parameters())
    assert params.keys() == pointers.keys()
    assert all(params[n] is pointers[n] for n in params), "parameters replaced, not converted"
    large = [n for n, p in params.items() if p.dtype == torch.bfloat16]
    assert "backbone.language_backbone.encoder.token_embedding.weight" in large
    assert "backbone.vision_backbone.convs.0.conv_3x3.weight" in large
    # The small ViT's products (64 wide) are under the size held in bf16.
    assert "backbone.vision_backbone.trunk.blocks.0.mlp.fc1.weight" not in large
    for name, p in params.items():
        assert (p.dtype == torch.bfloat16) == is_held_low(name, p), name
        if name.endswith(("bias", "norm.weight", "norm1.weight")):
            assert p.dtype == torch.float32, name
    assert finder.transformer.decoder.reference_points.weight.dtype == torch.float32
    rope = finder.backbone.vision_backbone.trunk.blocks[0].attn.freqs_cis
    assert rope.is_complex()
    # The small config is mostly its vocabulary: held in bf16 it halves.
    assert _param_bytes(finder) < 0.6 * before


def test_exact_mode_is_refused_on_bf16_weights_in_one_line():
    t, finder = _golden_bf16()
    with pytest.raises(ValueError) as err:
        find_case(finder, t, "text")
    text = str(err.value)
    assert "bfloat16" in text and "precision='fast'" in text and "\n" not in text


def test_fast_mode_on_bf16_weights_matches_exact_mode_and_the_oracle_at_bf16_tolerance():
    t, held = _golden_bf16()
    exact_finder = seeded_finder(t)
    for case in ("text", "exemplar"):
        fast = find_case(held, t, case, precision="fast")
        exact = find_case(exact_finder, t, case)
        # Not degenerate: distinct finite scores, boxes of some spread, some mask pixels on.
        assert torch.isfinite(fast.scores).all() and fast.scores.std() > 1e-3
        assert fast.boxes.std() > 1.0 and 0.01 < fast.masks.float().mean() < 0.99
        # Query by query (near-equal scores may swap places in bf16).
        order = exact.queries.argsort()
        by_query = fast.queries.argsort()
        for name in ("scores", "boxes"):
            assert_parity(
                getattr(fast, name)[by_query],
                getattr(exact, name)[order],
                ulps=BF16_ULPS,
                eps=BF16_EPS,
                name=f"{case} {name}, fast on bf16 weights against exact",
            )
        expected = _by_score(t, case)
        oracle_scores = t[f"{case}/scores"][fast.queries]
        assert_parity(fast.scores, oracle_scores, ulps=BF16_ULPS, eps=BF16_EPS, name="oracle")
        assert expected["scores"].shape == fast.scores.shape


def test_back_to_float32_computes_exact_mode_again():
    t, finder = _golden_bf16()
    finder.hold_in(torch.float32)
    assert all(p.dtype == torch.float32 for p in finder.parameters())
    got = find_case(finder, t, "text")  # exact again, from weights rounded to bf16 once
    expected = _by_score(t, "text")
    assert_parity(got.scores, expected["scores"][...], ulps=BF16_ULPS, eps=BF16_EPS)


def test_a_state_dict_loads_straight_into_bf16_without_a_float32_model():
    t = torch.load(FIXTURE, weights_only=True)
    state = {f"detector.{k}": v for k, v in seeded_finder(t).state_dict().items()}
    finder = finder_from_state_dict(state, seeded_finder(t).finder_cfg, dtype=torch.bfloat16)
    assert finder.held_dtype == torch.bfloat16
    assert finder.backbone.vision_backbone.convs[0].conv_3x3.weight.dtype == torch.bfloat16
    assert finder.transformer.encoder.layers[0].linear1.weight.dtype == torch.bfloat16
    got = finder.find(t["frame"], "a red bicycle", threshold=0.0, precision="fast")
    assert torch.isfinite(got.scores).all()


def test_hold_in_takes_float32_or_bf16_only():
    module = torch.nn.Linear(256, 256)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        hold_in(module, torch.float16)
    hold_in(module, torch.bfloat16)
    assert module.weight.dtype == torch.bfloat16 and module.bias.dtype == torch.float32
    assert module.weight.numel() == HELD_MIN_ELEMENTS


def _memory_mb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(field)


def test_converting_a_memory_mapped_file_does_not_hold_its_float32_pages(tmp_path):
    """Loading `sam3.pt` in bf16: the peak is about the bf16 tensors, not the file and them."""
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        pytest.skip("no /proc/self/clear_refs to restart the peak-RSS count")
    path = tmp_path / "weights.pt"
    gen = torch.Generator().manual_seed(0)
    torch.save({f"l{i}.weight": torch.randn(2048, 2048, generator=gen) for i in range(8)}, path)
    state = torch.load(path, mmap=True, weights_only=True)  # 128 MB float32, none read yet
    expected = state["l3.weight"].to(torch.bfloat16)
    base = _memory_mb("VmRSS")
    clear_refs.write_text("5")
    convert_state(state, torch.bfloat16)
    peak = _memory_mb("VmHWM") - base
    assert torch.equal(state["l3.weight"], expected)
    # 64 MB of bf16 tensors and one 16 MB float32 tensor at a time; holding the file's
    # pages would add its 128 MB.
    assert peak < 64 + 16 + 40, f"peak {peak} MB over the start"


def test_a_finder_wide_enough_for_bf16_products_everywhere_runs_fast_mode_on_them():
    """The golden sizes keep the ViT and text products under `HELD_MIN_ELEMENTS`: here they
    are held in bf16 too (qkv, MLP, the neck's transposed convolutions), at random init."""
    from model.sam3.decoder import DecoderConfig
    from model.sam3.finder import FinderConfig
    from model.sam3.fusion_encoder import FusionEncoderConfig
    from model.sam3.heads import HeadsConfig
    from model.sam3.text_encoder import TextEncoderConfig
    from model.sam3.vit import ViTConfig

    vit = ViTConfig(
        img_size=168,
        pretrain_img_size=70,
        embed_dim=256,
        depth=2,
        num_heads=4,
        global_att_blocks=(1,),
        window_size=6,
    )
    cfg = FinderConfig(
        vit=vit,
        text=TextEncoderConfig(width=256, heads=4, layers=1),
        heads=HeadsConfig(
            fusion=FusionEncoderConfig(num_layers=1),
            decoder=DecoderConfig(num_layers=1, num_queries=12),
        ),
    )
    torch.manual_seed(0)
    finder = Sam3Finder(cfg=cfg).eval()
    frame = torch.randint(0, 256, (60, 80, 3), dtype=torch.uint8)
    kw = {"threshold": 0.0, "precision": "fast", "boxes": [[5, 5, 40, 30]]}
    expected = finder.find(frame, "a cat", **kw)
    finder.hold_in(torch.bfloat16)
    trunk = finder.backbone.vision_backbone.trunk
    assert trunk.blocks[0].mlp.fc1.weight.dtype == torch.bfloat16
    assert finder.backbone.vision_backbone.convs[0].dconv_2x2_0.weight.dtype == torch.bfloat16
    got = finder.find(frame, "a cat", **kw)
    assert expected.scores.std() > 1e-4
    order, other = expected.queries.argsort(), got.queries.argsort()
    for name in ("scores", "boxes"):
        assert_parity(
            getattr(got, name)[other],
            getattr(expected, name)[order],
            ulps=BF16_ULPS,
            eps=BF16_EPS,
            name=f"{name}, bf16 weights against float32 weights in fast mode",
        )


def test_load_finder_reads_a_file_into_bf16(tmp_path):
    t, held = _golden_bf16()
    path = tmp_path / "sam3.pt"
    finder = seeded_finder(t)
    torch.save({"model": {f"detector.{k}": v for k, v in finder.state_dict().items()}}, path)
    loaded = load_finder(path, "cpu", finder.finder_cfg, dtype=torch.bfloat16)
    assert loaded.held_dtype == torch.bfloat16
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.parameters(), held.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        load_finder(path, "cpu", finder.finder_cfg, dtype=torch.float16)
