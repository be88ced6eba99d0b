"""Parity of our Hiera + FPN image encoder with the reference sam2 implementation."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from oracle import build_reference
from sam2.modeling.backbones.hieradet import Hiera as RefHiera
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam2.config import VARIANTS, HieraConfig, NeckConfig, get_config
from model.sam2.hiera import Hiera
from model.sam2.image_encoder import BackboneOutput, ImageEncoder, build_image_encoder
from model.sam2.neck import FpnNeck

# Smallest side that keeps every official variant's windows meaningful while
# still padding stages 2 and 3 (16 -> 28 and 8 -> 14 tokens) as reduced sizes do.
SIZE = 256
# Batch 2 where it is cheap; the larger trunks run batch 1 to keep the file fast.
BATCH = {"sam2.1-tiny": 2, "sam2-tiny": 2}
# Building a full reference SAM 2 large and running its trunk dominates the file.
_VARIANT_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if "large" in name else name for name in VARIANTS
]


@pytest.fixture(scope="module", params=_VARIANT_PARAMS)
def encoders(request) -> tuple[str, torch.nn.Module, ImageEncoder]:
    """(variant, reference image encoder, ours holding the reference's weights)."""
    name = request.param
    ref = build_reference(name, image_size=SIZE).image_encoder
    ref_state = ref.state_dict()
    # Built on the meta device: random init of the big trunks is wasted work
    # when every weight is replaced by the reference's.
    with torch.device("meta"):
        ours = build_image_encoder(get_config(name, image_size=SIZE))
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert ours_shapes == {k: tuple(v.shape) for k, v in ref_state.items()}
    ours.load_state_dict(ref_state, strict=True, assign=True)
    return name, ref, ours.eval()


def _random_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _compare(ours: BackboneOutput, ref: dict, **budget) -> float:
    """Asserts every output matches the reference; returns the largest abs diff."""
    pairs = [(ours.vision_features, ref["vision_features"])]
    assert len(ours.backbone_fpn) == len(ref["backbone_fpn"]) == 3
    assert len(ours.vision_pos_enc) == len(ref["vision_pos_enc"]) == 3
    pairs += list(zip(ours.backbone_fpn, ref["backbone_fpn"], strict=True))
    pairs += list(zip(ours.vision_pos_enc, ref["vision_pos_enc"], strict=True))
    for a, b in pairs:
        assert a.dtype == b.dtype
        assert_parity(a, b, **budget)
    return max((a.float() - b.float()).abs().max().item() for a, b in pairs)


@torch.no_grad()
def test_matches_reference_at_reduced_size(encoders):
    name, ref, ours = encoders
    batch = BATCH.get(name, 1)
    images = _random_images(batch, SIZE)
    out = ours(images)
    _compare(out, ref(images))
    side = SIZE // 16
    assert out.vision_features.shape == (batch, 256, side, side)
    assert [f.shape[-1] for f in out.backbone_fpn] == [side * 4, side * 2, side]


@torch.no_grad()
@pytest.mark.slow
@pytest.mark.parametrize("encoders", ["sam2.1-tiny"], indirect=True)
def test_matches_reference_at_full_size(encoders):
    _, ref, ours = encoders
    images = _random_images(1, 1024, seed=1)
    out = ours(images)
    _compare(out, ref(images))
    assert out.vision_features.shape == (1, 256, 64, 64)
    assert out.backbone_fpn[0].shape == (1, 256, 256, 256)


@torch.no_grad()
@pytest.mark.parametrize("encoders", ["sam2.1-tiny"], indirect=True)
def test_bf16_autocast_close_to_fp32(encoders):
    _, ref, ours = encoders
    images = _random_images(1, 128, seed=2)
    full = ours(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = ours(images)
        ref_half = ref(images)
    # Same ops as the reference, so the same dtypes and (up to rounding) values.
    _compare(half, ref_half, ulps=BF16_ULPS, eps=BF16_EPS)
    outs = [half.vision_features, *half.backbone_fpn, *half.vision_pos_enc]
    fulls = [full.vision_features, *full.backbone_fpn, *full.vision_pos_enc]
    assert half.backbone_fpn[0].dtype == torch.bfloat16
    for h, f in zip(outs, fulls, strict=True):
        assert torch.isfinite(h).all()
        # bf16 keeps 8 mantissa bits (~4e-3 relative per rounding); twelve
        # blocks of rounding measured ~1e-2 relative L2 error, so allow 3e-2.
        rel = (h.float() - f).norm() / f.norm()
        assert rel < 3e-2


def _small_hiera_cfg(**overrides) -> HieraConfig:
    base = HieraConfig(
        embed_dim=16,
        num_heads=2,
        stages=(1, 2, 3, 2),
        global_att_blocks=(4,),
        window_spec=(4, 4, 6, 3),
        window_pos_embed_bkg_spatial_size=(5, 5),
    )
    return replace(base, **overrides)


@torch.no_grad()
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        # Fewer pooling stages: widening blocks that keep the grid.
        {"q_pool": 1},
    ],
    ids=["default", "q_pool_1"],
)
def test_small_trunk_matches_reference(overrides):
    cfg = _small_hiera_cfg(**overrides)
    torch.manual_seed(0)
    ref = RefHiera(
        embed_dim=cfg.embed_dim,
        num_heads=cfg.num_heads,
        q_pool=cfg.q_pool,
        stages=cfg.stages,
        global_att_blocks=cfg.global_att_blocks,
        window_spec=cfg.window_spec,
        window_pos_embed_bkg_spatial_size=cfg.window_pos_embed_bkg_spatial_size,
    ).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours = Hiera(cfg=cfg).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    # 80 px -> a 20x20 token grid: ragged windows at every stage.
    images = _random_images(2, 80, seed=3)
    expected, got = ref(images), ours(images)
    assert [tuple(t.shape[1:]) for t in got] == [tuple(t.shape[1:]) for t in expected]
    for a, b in zip(got, expected, strict=True):
        assert_parity(a, b)


def test_rejects_bad_images():
    trunk = Hiera(cfg=_small_hiera_cfg())
    with pytest.raises(ValueError, match="multiples of 16"):
        trunk(torch.zeros(1, 3, 40, 48))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        trunk(torch.zeros(1, 1, 32, 32))


def test_rejects_mismatched_trunk_and_neck():
    trunk = Hiera(cfg=_small_hiera_cfg())
    neck = FpnNeck(cfg=NeckConfig(d_model=32, backbone_channel_list=(96, 48, 24, 16)))
    with pytest.raises(ValueError, match="do not match"):
        ImageEncoder(trunk=trunk, neck=neck, scalp=1)


def test_rejects_bad_configs():
    with pytest.raises(ValueError, match="q_pool"):
        Hiera(cfg=_small_hiera_cfg(q_pool=4))
    with pytest.raises(ValueError, match="window_spec"):
        Hiera(cfg=_small_hiera_cfg(window_spec=(4, 4, 6)))
    with pytest.raises(ValueError, match="fpn_interp_model"):
        FpnNeck(cfg=NeckConfig(fpn_interp_model="area"))


def test_position_embedding_is_kept_until_the_weights_change():
    trunk = Hiera(cfg=_small_hiera_cfg())
    torch.nn.init.normal_(trunk.pos_embed)
    torch.nn.init.normal_(trunk.pos_embed_window)
    with torch.no_grad():
        first = trunk._pos_embed(16, 16)
        assert trunk._pos_embed(16, 16) is first  # kept
        assert trunk._pos_embed(32, 16).shape[1:3] == (32, 16)  # another grid: computed
        again = trunk._pos_embed(16, 16)
        torch.testing.assert_close(again, first, rtol=0, atol=0)
        state = {k: v + 1 for k, v in trunk.state_dict().items()}
        trunk.load_state_dict(state)  # in place: the version counters move
        changed = trunk._pos_embed(16, 16)
        torch.testing.assert_close(changed, trunk._compute_pos_embed(16, 16), rtol=0, atol=0)
        assert not torch.equal(changed, first)
    # With autograd on, it is computed each time, so gradients reach the parameters.
    trunk._pos_embed(16, 16).sum().backward()
    assert trunk.pos_embed.grad is not None
