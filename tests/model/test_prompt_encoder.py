"""Prompt encoder: parity with the reference sam2 PromptEncoder, shapes, bad input."""

from __future__ import annotations

import functools

import pytest
import torch
from oracle import build_reference
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam2.config import get_config
from model.sam2.prompt_encoder import PromptEncoder


@functools.cache
def _pair(name: str, image_size: int) -> tuple[torch.nn.Module, PromptEncoder]:
    """The reference prompt encoder and ours loaded strictly with its weights."""
    ref = build_reference(name, image_size=image_size).sam_prompt_encoder
    cfg = get_config(name, image_size=image_size)
    ours = PromptEncoder(
        cfg=cfg.prompt_encoder, image_size=cfg.image_size, backbone_stride=cfg.backbone_stride
    )
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours.eval()


def _prompts(case: str, image_size: int, b: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    coords = torch.rand(b, 4, 2, generator=gen) * image_size
    labels = torch.tensor([[1, 0, 1, -1], [1, 1, 0, 0], [0, -1, -1, -1]], dtype=torch.int32)[:b]
    x0y0 = torch.rand(b, 2, generator=gen) * image_size / 2
    boxes = torch.cat([x0y0, x0y0 + image_size / 4], dim=1)  # (B, 4)
    side = 4 * (image_size // 16)
    masks = torch.randn(b, 1, side, side, generator=gen) * 5
    box_points = (boxes.reshape(b, 2, 2), torch.tensor([[2, 3]] * b, dtype=torch.int32))
    return {
        "points": ((coords, labels), None, None),
        "box": (None, boxes, None),
        "points+box": ((coords, labels), boxes, None),
        "box-as-points": (box_points, None, None),
        "mask": (None, None, masks),
        "points+mask": ((coords, labels), None, masks),
        "none": (None, None, None),
    }[case]


CASES = ["points", "box", "points+box", "box-as-points", "mask", "points+mask", "none"]
# Expected number of sparse tokens for the 4 points / 1 box above.
SPARSE_TOKENS = {
    "points": 5,
    "box": 2,
    "points+box": 6,
    "box-as-points": 3,
    "mask": 0,
    "points+mask": 5,
    "none": 0,
}


@pytest.mark.parametrize("name", ["sam2.1-tiny", "sam2-large"])
@pytest.mark.parametrize("case", CASES)
def test_matches_reference(name: str, case: str) -> None:
    ref, ours = _pair(name, 256)
    prompts = _prompts(case, 256)
    with torch.no_grad():
        sparse, dense = ours(*prompts)
        ref_sparse, ref_dense = ref(*prompts)
    b = 1 if case == "none" else 3
    assert sparse.shape == (b, SPARSE_TOKENS[case], 256)
    assert dense.shape == (b, 256, 16, 16)
    assert_parity(sparse, ref_sparse, name="sparse")
    assert_parity(dense, ref_dense, name="dense")


@pytest.mark.parametrize("case", ["points", "points+box", "mask"])
def test_matches_reference_at_full_resolution(case: str) -> None:
    ref, ours = _pair("sam2.1-tiny", 1024)
    prompts = _prompts(case, 1024)
    with torch.no_grad():
        for got, want in zip(ours(*prompts), ref(*prompts), strict=True):
            assert_parity(got, want)
        assert_parity(ours.get_dense_pe(), ref.get_dense_pe(), name="dense PE")
    assert ours.get_dense_pe().shape == (1, 256, 64, 64)
    assert ours.mask_input_size == (256, 256)


def test_dense_pe_matches_reference() -> None:
    ref, ours = _pair("sam2.1-tiny", 256)
    pe = ours.get_dense_pe()
    assert pe.shape == (1, 256, 16, 16)
    assert_parity(pe, ref.get_dense_pe())


def test_unknown_labels_match_reference() -> None:
    # Labels outside -1..3 get no learned embedding in the reference; same here.
    ref, ours = _pair("sam2.1-tiny", 256)
    coords = torch.rand(2, 3, 2) * 256
    labels = torch.tensor([[7, 1, -5], [3, 4, 0]], dtype=torch.int64)
    with torch.no_grad():
        sparse, _ = ours((coords, labels), None, None)
        ref_sparse, _ = ref((coords, labels), None, None)
    assert_parity(sparse, ref_sparse)


def test_padding_token_is_not_a_point_embedding() -> None:
    _, ours = _pair("sam2.1-tiny", 256)
    coords = torch.rand(1, 2, 2) * 256
    labels = torch.tensor([[1, -1]])
    with torch.no_grad():
        sparse, _ = ours((coords, labels), None, None)
    not_a_point = ours.not_a_point_embed.weight[0]
    assert sparse.shape == (1, 3, 256)
    torch.testing.assert_close(sparse[0, 1], not_a_point, atol=0, rtol=0)
    torch.testing.assert_close(sparse[0, 2], not_a_point, atol=0, rtol=0)


def test_state_dict_keys_match_reference() -> None:
    ref, ours = _pair("sam2.1-tiny", 256)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes == ref_shapes


def test_bf16_autocast_close_to_fp32() -> None:
    _, ours = _pair("sam2.1-tiny", 256)
    prompts = _prompts("points+mask", 256)
    with torch.no_grad():
        sparse, dense = ours(*prompts)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sparse_bf, dense_bf = ours(*prompts)
    assert torch.isfinite(sparse_bf).all() and torch.isfinite(dense_bf).all()
    # The random Fourier projection runs in bf16 under autocast, so sin/cos phases
    # carry ~1e-2 relative error on outputs of magnitude ~4 (the reference too).
    assert_parity(sparse_bf, sparse, ulps=BF16_ULPS, eps=BF16_EPS, name="sparse")
    assert_parity(dense_bf, dense, ulps=BF16_ULPS, eps=BF16_EPS, name="dense")


def _bad_prompts() -> list[tuple]:
    coords, labels = torch.zeros(2, 3, 2), torch.ones(2, 3)
    return [
        ((torch.zeros(2, 3), labels), None, None),  # coords without xy axis
        ((coords, torch.ones(2, 4)), None, None),  # labels for another N
        ((coords, labels), torch.zeros(3, 4), None),  # batch sizes disagree
        (None, torch.zeros(2, 2, 4), None),  # two boxes per prompt
        (None, None, torch.zeros(2, 1, 32, 32)),  # mask not at 4x the grid
        (None, None, torch.zeros(2, 64, 64)),  # mask without channel axis
    ]


@pytest.mark.parametrize("prompts", _bad_prompts())
def test_bad_prompts_raise(prompts: tuple) -> None:
    _, ours = _pair("sam2.1-tiny", 256)
    with pytest.raises(ValueError):
        ours(*prompts)


def test_bad_image_size_raises() -> None:
    with pytest.raises(ValueError, match="backbone_stride"):
        PromptEncoder(
            cfg=get_config("sam2.1-tiny").prompt_encoder, image_size=250, backbone_stride=16
        )
