"""Our SAM 3 vision backbone against the oracle's outputs stored in `fixtures/vit.pt`.

Runs without the oracle (CI): the fixture holds the oracle's preprocessed frame, trunk
output, kept pyramid levels and position encodings, its state dict's key names and shapes
and its RoPE tables; weights are rebuilt here from the same names (`seeded_value`).
Written by `scripts/make_sam3_fixtures.py vit` from `golden_vit.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from golden_vit import D_MODEL, VIT
from sam3_oracle import seeded_value
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam3.neck import NeckConfig, VisionBackbone, build_vision_backbone
from model.sam3.vit import _native_uint8_resize, preprocess

FIXTURE = Path(__file__).parent / "fixtures" / "vit.pt"


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE, weights_only=True)


def oracle_state_dict(golden: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The oracle's state dict rebuilt from its key names and shapes: name-seeded weights,
    and the stored RoPE tables."""
    state = {}
    for key, shape in golden.items():
        if key.startswith("shape:"):
            name = key.removeprefix("shape:")
            stored = golden.get(f"state:{name}")
            seeded = stored is None
            state[name] = seeded_value(name, tuple(shape.tolist())) if seeded else stored
    return state


@pytest.fixture(scope="module")
def ours(golden) -> VisionBackbone:
    model = build_vision_backbone(VIT, NeckConfig(d_model=D_MODEL))
    model.load_state_dict(oracle_state_dict(golden), strict=True)
    return model.eval()


def image(golden) -> torch.Tensor:
    """The oracle's preprocessed frame, (1, 3, S, S) in [-1, 1]."""
    return (golden["resized"].float() * (1 / 255) - 0.5) / 0.5


def _assert_informative(t: torch.Tensor) -> None:
    assert torch.isfinite(t).all() and t.float().std() > 1e-2


def test_fixture_state_dict_loads_strictly_with_the_oracles_names_and_shapes(golden):
    model = build_vision_backbone(VIT, NeckConfig(d_model=D_MODEL))
    names = {k.removeprefix("shape:") for k in golden if k.startswith("shape:")}
    ours_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(ours_shapes) == names
    for name in names:
        assert ours_shapes[name] == tuple(golden[f"shape:{name}"].tolist()), name
    model.load_state_dict(oracle_state_dict(golden), strict=True)


def test_rope_tables_equal_the_oracles(golden):
    model = build_vision_backbone(VIT, NeckConfig(d_model=D_MODEL))  # tables computed, not loaded
    state = model.state_dict()
    tables = {k.removeprefix("state:"): v for k, v in golden.items() if k.startswith("state:")}
    assert len(tables) == VIT.depth
    for name, table in tables.items():
        assert state[name].dtype == torch.complex64
        torch.testing.assert_close(state[name], table, rtol=1e-6, atol=1e-6)


def test_preprocess_matches_the_oracles(golden):
    ours = preprocess(golden["frame"].numpy(), VIT.img_size)
    expected = image(golden)
    assert ours.shape == expected.shape and ours.dtype == torch.float32
    if _native_uint8_resize():
        assert torch.equal(ours, expected)
    else:
        # Resized in float32 and rounded: a level apart at most, where the fixture's CPU
        # resized the uint8 image natively.
        assert (ours - expected).abs().max() <= 2 / 255 + 1e-6


@torch.inference_mode()
def test_trunk_and_neck_match_the_oracle(golden, ours):
    x = image(golden)
    (trunk,) = ours.trunk(x)
    _assert_informative(golden["trunk"])
    assert_parity(trunk, golden["trunk"], name="trunk")
    out = ours(x)
    levels = len(out.backbone_fpn)
    assert levels == 3 and out.vision_features is out.backbone_fpn[-1]
    for i in range(levels):
        _assert_informative(golden[f"fpn.{i}"])
        assert_parity(out.backbone_fpn[i], golden[f"fpn.{i}"], name=f"fpn.{i}")
        assert_parity(out.vision_pos_enc[i], golden[f"pos.{i}"], name=f"pos.{i}")
    side = VIT.grid_size
    assert [f.shape[-1] for f in out.backbone_fpn] == [4 * side, 2 * side, side]


@torch.inference_mode()
def test_fast_mode_is_within_bf16_tolerance_of_the_oracles_float32(golden, ours):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(image(golden))
    for i in range(3):
        assert out.backbone_fpn[i].dtype == torch.bfloat16
        assert out.vision_pos_enc[i].dtype == torch.bfloat16
        expected = golden[f"fpn.{i}"]
        assert_parity(out.backbone_fpn[i], expected, ulps=BF16_ULPS, eps=BF16_EPS, name=f"{i}")
