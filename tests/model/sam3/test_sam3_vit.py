"""SAM 3's ViT trunk and detector neck: parity with the live oracle (`sam3==0.1.4`, skipped
where it is not installed) and the checks that need no oracle.

The golden-fixture twin of the parity tests, for CI, is `test_sam3_vit_golden.py`.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from golden_vit import build_oracle, frame, oracle_preprocess
from sam3_oracle import on_cpu, require_sam3
from tolerance import BF16_EPS, BF16_ULPS, assert_parity
from torch.overrides import TorchFunctionMode

import model.kernels.bf16_attention as bf16_attention
import model.kernels.blocked_attention as blocked_attention
from model.sam3 import vit
from model.sam3.neck import NeckConfig, VisionBackbone, build_vision_backbone
from model.sam3.vit import ViT, ViTConfig, preprocess, tile_pos_embed

# The brief's reduced size: 18 x 18 tokens, 3 x 3 windows of 6, the 6 x 6 learnt
# positions tiled three times. And one with ragged edges: windows of 5 pad the grid to
# 20 x 20, 5 x 5 learnt positions tile it with a remainder, and the first block is global.
CONFIGS = {
    "even": ViTConfig(
        img_size=252, pretrain_img_size=84, embed_dim=64, depth=4, num_heads=4,
        global_att_blocks=(1, 3), window_size=6,
    ),
    "ragged": ViTConfig(
        img_size=252, pretrain_img_size=70, embed_dim=64, depth=4, num_heads=4,
        global_att_blocks=(0, 3), window_size=5,
    ),
}  # fmt: skip
D_MODEL = 16


@functools.cache
def _pair(name: str) -> tuple[torch.nn.Module, VisionBackbone]:
    """(the oracle's vision backbone, ours holding its weights), name-seeded."""
    require_sam3()
    cfg = CONFIGS[name]
    ref = build_oracle(cfg, D_MODEL)
    ours = build_vision_backbone(cfg, NeckConfig(d_model=D_MODEL))
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours.eval()


def _images(cfg: ViTConfig, batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.window_size)
    return torch.rand(batch, 3, cfg.img_size, cfg.img_size, generator=gen) * 2 - 1


def _with_trunk(backbone: torch.nn.Module, run):
    """(the trunk's map, run()'s result) from one forward of `backbone` in `run`."""
    seen = []
    handle = backbone.trunk.register_forward_hook(lambda _m, _i, out: seen.append(out[0]))
    try:
        result = run()
    finally:
        handle.remove()
    (trunk,) = seen
    return trunk, result


def _run_oracle(ref: torch.nn.Module, x: torch.Tensor):
    """(trunk map, kept levels, their position encodings) as SAM3VLBackbone(scalp=1) keeps them."""
    with on_cpu():
        trunk, (feats, pos, _, _) = _with_trunk(ref, lambda: ref(x))
    return trunk, feats[:-1], pos[:-1]


def _assert_informative(t: torch.Tensor) -> None:
    assert torch.isfinite(t).all() and t.float().std() > 1e-2


@pytest.fixture
def global_attention_calls(monkeypatch) -> list[tuple[int, ...]]:
    """Query shapes that `model.kernels.blocked_attention` computed (float32 on oneDNN: the global
    blocks)."""
    calls: list[tuple[int, ...]] = []
    original = blocked_attention.blocked_attention

    def counting(q, k, v, **kwargs):
        calls.append(tuple(q.shape))
        return original(q, k, v, **kwargs)

    monkeypatch.setattr(blocked_attention, "blocked_attention", counting)
    return calls


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.inference_mode()
def test_matches_the_oracle(name, gemm_route, global_attention_calls, monkeypatch):
    # Every float32 attention of any size may take the blocked route: only the global
    # blocks' must (windows go to torch's fused kernel).
    monkeypatch.setattr(blocked_attention, "MIN_PAIRS", 0)
    ref, ours = _pair(name)
    cfg = CONFIGS[name]
    x = _images(cfg)
    trunk, feats, pos = _run_oracle(ref, x)
    _assert_informative(trunk)
    our_trunk, out = _with_trunk(ours, lambda: ours(x))
    assert_parity(our_trunk, trunk, name="trunk")
    assert len(out.backbone_fpn) == len(out.vision_pos_enc) == 3
    for i, (a, b) in enumerate(zip(out.backbone_fpn, feats, strict=True)):
        _assert_informative(b)
        assert_parity(a, b, name=f"fpn.{i}")
    for i, (a, b) in enumerate(zip(out.vision_pos_enc, pos, strict=True)):
        assert_parity(a, b, name=f"pos.{i}")
    side = cfg.grid_size
    assert out.vision_features.shape == (2, D_MODEL, side, side)
    if gemm_route == "onednn":
        # Two global blocks over 18 x 18 tokens.
        assert global_attention_calls == [(2, cfg.num_heads, side * side, cfg.head_dim)] * 2
    else:
        assert not global_attention_calls


@pytest.fixture(params=["bf16_route", "fused_amx"])
def bf16_attention_route(request, monkeypatch) -> str:
    """Every bf16 CPU attention on our bf16 routes (windows in groups of slices, global
    blocks in bf16 blocks), or on torch's fused kernel as on a CPU with AMX tiles."""
    amx = request.param == "fused_amx"
    monkeypatch.setattr(bf16_attention, "fused_kernel_has_amx", lambda: amx)
    monkeypatch.setattr(bf16_attention, "_MIN_PAIRS", 0)
    return request.param


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.inference_mode()
def test_fast_mode_matches_the_oracle_under_bf16(
    name, bf16_attention_route, global_attention_calls, monkeypatch
):
    ref, ours = _pair(name)
    cfg = CONFIGS[name]
    chunk_calls: list[tuple[int, ...]] = []
    chunked = bf16_attention.chunked_bf16_attention

    def counting(q, k, v, **kwargs):
        chunk_calls.append(tuple(q.shape))
        return chunked(q, k, v, **kwargs)

    monkeypatch.setattr(bf16_attention, "chunked_bf16_attention", counting)
    # Groups of 3 (window, head) slices, so that windows are grouped at these sizes too.
    monkeypatch.setattr(vit, "_GROUP_ELEMENTS", 3 * cfg.window_size**4)
    x = _images(cfg, batch=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        trunk, feats, pos = _run_oracle(ref, x)
        our_trunk, out = _with_trunk(ours, lambda: ours(x))
    assert our_trunk.dtype == trunk.dtype  # float32: the residual stream
    assert_parity(our_trunk, trunk, ulps=BF16_ULPS, eps=BF16_EPS, name="trunk")
    for i, (a, b) in enumerate(zip(out.backbone_fpn, feats, strict=True)):
        assert a.dtype == b.dtype == torch.bfloat16
        _assert_informative(b)
        assert_parity(a, b, ulps=BF16_ULPS, eps=BF16_EPS, name=f"fpn.{i}")
    for a, b in zip(out.vision_pos_enc, pos, strict=True):
        assert a.dtype == b.dtype
        assert_parity(a, b, ulps=BF16_ULPS, eps=BF16_EPS)
    # 2 global and 2 windowed blocks.
    if bf16_attention_route == "fused_amx":
        assert not chunk_calls and not global_attention_calls
        return
    global_shape = (1, cfg.num_heads, cfg.grid_size**2, cfg.head_dim)
    assert global_attention_calls == [global_shape] * 2
    windows = (-(-cfg.grid_size // cfg.window_size)) ** 2
    assert {shape[1] for shape in chunk_calls} == {cfg.window_size**2}
    assert sum(shape[0] for shape in chunk_calls) == 2 * windows * cfg.num_heads
    assert max(shape[0] for shape in chunk_calls) == 3


@pytest.mark.parametrize("name", list(CONFIGS))
def test_oracle_state_dict_loads_strictly_and_rope_tables_agree(name):
    ref, _ = _pair(name)
    fresh = build_vision_backbone(CONFIGS[name], NeckConfig(d_model=D_MODEL))
    ref_state, ours_state = ref.state_dict(), fresh.state_dict()
    assert list(ours_state) == list(ref_state)
    for key, value in ref_state.items():
        assert ours_state[key].shape == value.shape and ours_state[key].dtype == value.dtype, key
        if value.is_complex():  # RoPE tables: ours computed, not loaded
            torch.testing.assert_close(ours_state[key], value, rtol=1e-6, atol=1e-6)
    fresh.load_state_dict(ref_state, strict=True)


class _LinspaceOnCpu(TorchFunctionMode):
    """The oracle reads its stochastic-depth rates with `.item()`, which meta tensors lack."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func is torch.linspace:
            kwargs = {**(kwargs or {}), "device": "cpu"}
        return func(*args, **(kwargs or {}))


def test_full_size_keys_and_shapes_equal_the_oracles():
    """The released configuration (no weights: both built on the meta device)."""
    mb = require_sam3()
    with torch.device("meta"), on_cpu(), _LinspaceOnCpu():
        ref = mb._create_vision_backbone(enable_inst_interactivity=False)
        ours = build_vision_backbone()
    ref_shapes = {k: (tuple(v.shape), v.dtype) for k, v in ref.state_dict().items()}
    assert {k: (tuple(v.shape), v.dtype) for k, v in ours.state_dict().items()} == ref_shapes
    assert ref_shapes["trunk.pos_embed"][0] == (1, 577, 1024)
    assert ref_shapes["trunk.blocks.31.attn.freqs_cis"][0] == (72 * 72, 32)
    assert ref_shapes["trunk.blocks.0.attn.freqs_cis"][0] == (24 * 24, 32)
    assert sum(v.numel() for v in ours.parameters()) == sum(v.numel() for v in ref.parameters())


@pytest.mark.parametrize("hw", [(1080, 1920), (300, 200), (37, 1500), (252, 252), (251, 253)])
def test_preprocess_matches_the_oracles(hw):
    require_sam3()
    pixels = frame(*hw)
    expected = oracle_preprocess(pixels, 252)
    assert torch.equal(preprocess(pixels.numpy(), 252), expected)
    assert torch.equal(preprocess(pixels, 252), expected)  # a uint8 tensor too


# Without the oracle.


def test_tiled_position_embedding_repeats_the_learnt_grid():
    side, c = 5, 3
    table = torch.randn(1, 1 + side * side, c)
    tiled = tile_pos_embed(table, (12, 7))
    grid = table[0, 1:].view(side, side, c)
    assert tiled.shape == (1, 12, 7, c)
    for i in range(12):
        for j in range(7):
            assert torch.equal(tiled[0, i, j], grid[i % side, j % side])
    assert torch.equal(tile_pos_embed(table, (5, 5))[0], grid)


def test_position_embedding_is_kept_until_the_parameter_changes():
    cfg = CONFIGS["even"]
    trunk = ViT(cfg=cfg)
    with torch.no_grad():
        first = trunk._pos_embed((18, 18))
        assert trunk._pos_embed((18, 18)) is first
        trunk.pos_embed.add_(1.0)  # as loading a state dict does, in place
        second = trunk._pos_embed((18, 18))
    assert second is not first and torch.allclose(second, first + 1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"img_size": 250}, "multiples of patch_size"),
        ({"num_heads": 3}, "not divisible"),
        ({"embed_dim": 72, "num_heads": 4}, "multiple of 4"),
        ({"global_att_blocks": (3, 1)}, "increasing"),
        ({"global_att_blocks": (1, 2)}, "must be global"),
        ({"global_att_blocks": ()}, "increasing"),
        ({"window_size": 0}, "positive"),
    ],
)
def test_config_is_validated(change, message):
    from dataclasses import replace

    with pytest.raises(ValueError, match=message):
        ViT(cfg=replace(CONFIGS["even"], **change))


def test_neck_config_is_validated():
    trunk = ViT(cfg=CONFIGS["even"])
    with pytest.raises(ValueError, match="scale factors"):
        VisionBackbone(trunk=trunk, cfg=NeckConfig(scale_factors=(3.0,)))
    with pytest.raises(ValueError, match="scalp"):
        VisionBackbone(trunk=trunk, cfg=NeckConfig(scalp=4))


def test_wrong_image_sizes_are_refused():
    trunk = ViT(cfg=CONFIGS["even"])
    for shape in [(1, 3, 224, 224), (1, 1, 252, 252), (3, 252, 252)]:
        with pytest.raises(ValueError, match="expected images"):
            trunk(torch.zeros(shape))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
        np.zeros((0, 10, 3), dtype=np.uint8),
        [[0, 0, 0]],
    ],
)
def test_preprocess_refuses_what_is_not_an_rgb_uint8_frame(bad):
    with pytest.raises((ValueError, TypeError)):
        preprocess(bad, 252)


def test_preprocess_range_and_shape():
    x = preprocess(np.full((7, 9, 3), 255, dtype=np.uint8), 28)
    assert x.shape == (1, 3, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x, torch.ones_like(x))
    assert torch.equal(preprocess(np.zeros((28, 28, 3), dtype=np.uint8), 28), -torch.ones_like(x))


@torch.inference_mode()
def test_rope_tables_stay_complex_and_float64_agrees_with_float32():
    cfg = CONFIGS["ragged"]
    trunk = ViT(cfg=cfg).eval()
    x = _images(cfg, batch=1)
    trunk.bfloat16()  # parameters to bf16; complex buffers are left alone
    assert all(b.dtype == torch.complex64 for b in trunk.buffers())
    (expected,) = trunk.float()(x)
    _assert_informative(expected)
    (wide,) = trunk.double()(x.double())
    assert wide.dtype == torch.float64
    assert_parity(wide.float(), expected)
    trunk.blocks[0].attn.freqs_cis = trunk.blocks[0].attn.freqs_cis.real
    with pytest.raises(TypeError, match="complex"):
        trunk(x.double())
