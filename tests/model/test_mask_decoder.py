"""Mask decoder and two-way transformer: parity with the reference sam2 modules."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from oracle import build_reference, perturb_
from sam2.modeling.sam.mask_decoder import MaskDecoder as RefMaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer as RefTwoWayTransformer
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam2.config import MaskDecoderConfig, get_config
from model.sam2.mask_decoder import MaskDecoder

DIM = 256
OUTPUT_NAMES = ("masks", "iou_pred", "sam_tokens_out", "object_score_logits")


@functools.cache
def _pair(name: str, image_size: int) -> tuple[torch.nn.Module, MaskDecoder, torch.Tensor]:
    """Reference decoder, ours with its weights, and the matching dense image PE."""
    ref = build_reference(name, image_size=image_size)
    ours = MaskDecoder(cfg=get_config(name, image_size=image_size).mask_decoder)
    ours.load_state_dict(ref.sam_mask_decoder.state_dict(), strict=True)
    with torch.no_grad():
        image_pe = ref.sam_prompt_encoder.get_dense_pe()
    return ref.sam_mask_decoder, ours.eval(), image_pe


def _inputs(b: int, grid: int, *, n_img: int | None = None, n_tokens: int = 3, seed: int = 0):
    """Decoder inputs for b prompts on n_img images (default b) of a grid x grid embedding."""
    gen = torch.Generator().manual_seed(seed)
    n_img = b if n_img is None else n_img
    return {
        "image_embeddings": torch.randn(n_img, DIM, grid, grid, generator=gen),
        "sparse_prompt_embeddings": torch.randn(b, n_tokens, DIM, generator=gen),
        "dense_prompt_embeddings": torch.randn(b, DIM, grid, grid, generator=gen) * 0.5,
        "high_res_features": [
            torch.randn(n_img, DIM // 8, 4 * grid, 4 * grid, generator=gen),
            torch.randn(n_img, DIM // 4, 2 * grid, 2 * grid, generator=gen),
        ],
    }


def _run_both(ref, ours, image_pe, inputs, **flags):
    with torch.no_grad():
        got = ours(image_pe=image_pe, **inputs, **flags)
        want = ref(image_pe=image_pe, **inputs, **flags)
    return got, want


def _assert_outputs_close(got, want) -> None:
    for name, g, w in zip(OUTPUT_NAMES, got, want, strict=True):
        # Each prompt in the batch is its own computation: scale each by its own values.
        for b in range(g.shape[0]):
            assert_parity(g[b], w[b], name=f"{name}[{b}]")


@pytest.mark.parametrize("multimask_output", [True, False])
@pytest.mark.parametrize(("b", "repeat_image"), [(1, False), (3, False), (3, True)])
def test_matches_reference(multimask_output: bool, b: int, repeat_image: bool) -> None:
    ref, ours, image_pe = _pair("sam2.1-tiny", 256)
    inputs = _inputs(b, 16, n_img=1 if repeat_image else b)
    got, want = _run_both(
        ref, ours, image_pe, inputs, multimask_output=multimask_output, repeat_image=repeat_image
    )
    _assert_outputs_close(got, want)
    m = 3 if multimask_output else 1
    masks, iou_pred, tokens, obj = got
    assert masks.shape == (b, m, 64, 64)
    assert iou_pred.shape == (b, m)
    # use_multimask_token_for_obj_ptr: one pointer token per mask in multimask mode.
    assert tokens.shape == (b, m, DIM)
    assert obj.shape == (b, 1)


def test_matches_reference_sam2_large_weights() -> None:
    ref, ours, image_pe = _pair("sam2-large", 256)
    for multimask_output in (True, False):
        got, want = _run_both(
            ref,
            ours,
            image_pe,
            _inputs(2, 16),
            multimask_output=multimask_output,
            repeat_image=False,
        )
        _assert_outputs_close(got, want)


def test_matches_reference_at_full_resolution() -> None:
    ref, ours, image_pe = _pair("sam2.1-tiny", 1024)
    got, want = _run_both(
        ref, ours, image_pe, _inputs(2, 64), multimask_output=True, repeat_image=False
    )
    _assert_outputs_close(got, want)
    assert got[0].shape == (2, 3, 256, 256)


def test_dynamic_multimask_fallback_per_sample() -> None:
    ref, ours, image_pe = _pair("sam2.1-tiny", 256)
    inputs = _inputs(3, 16)
    # Huge stride-4 features on sample 0 push its logits far from 0, making its
    # single mask stable; the random samples 1 and 2 are unstable.
    inputs["high_res_features"][0][0] *= 1000.0
    with torch.no_grad():
        all_masks, all_iou, _, _ = ours.predict_masks(
            image_pe=image_pe, **inputs, repeat_image=False
        )
    stable = ours._stability_scores(all_masks[:, :1])[:, 0] >= 0.98
    assert stable.tolist() == [True, False, False]

    got, want = _run_both(ref, ours, image_pe, inputs, multimask_output=False, repeat_image=False)
    _assert_outputs_close(got, want)
    masks, iou_pred, tokens, _ = got
    best = all_iou[:, 1:].argmax(dim=1) + 1
    torch.testing.assert_close(masks[0, 0], all_masks[0, 0], atol=0, rtol=0)
    torch.testing.assert_close(iou_pred[0, 0], all_iou[0, 0], atol=0, rtol=0)
    for i in (1, 2):
        torch.testing.assert_close(masks[i, 0], all_masks[i, best[i]], atol=0, rtol=0)
        torch.testing.assert_close(iou_pred[i, 0], all_iou[i, best[i]], atol=0, rtol=0)
        assert not torch.equal(masks[i, 0], all_masks[i, 0])
    # The pointer token stays the single-mask token whatever mask was picked.
    assert tokens.shape == (3, 1, DIM)


def test_single_mask_without_dynamic_fallback() -> None:
    ref, ours, image_pe = _pair("sam2.1-tiny", 256)
    inputs = _inputs(2, 16)
    with torch.no_grad():
        all_masks, all_iou, _, _ = ours.predict_masks(
            image_pe=image_pe, **inputs, repeat_image=False
        )
        # Training mode skips the stability check, in the reference too.
        ours.train()
        ref.train()
        try:
            got, want = _run_both(
                ref, ours, image_pe, inputs, multimask_output=False, repeat_image=False
            )
        finally:
            ours.eval()
            ref.eval()
    assert (ours._stability_scores(all_masks[:, :1]) < 0.98).all()  # would have fallen back
    _assert_outputs_close(got, want)
    torch.testing.assert_close(got[0], all_masks[:, :1], atol=0, rtol=0)
    torch.testing.assert_close(got[1], all_iou[:, :1], atol=0, rtol=0)


def _ref_decoder(cfg: MaskDecoderConfig) -> RefMaskDecoder:
    """A reference decoder built the way SAM2Base builds it, for non-default switches."""
    torch.manual_seed(0)
    ref = RefMaskDecoder(
        transformer_dim=cfg.transformer_dim,
        transformer=RefTwoWayTransformer(
            depth=cfg.transformer_depth,
            embedding_dim=cfg.transformer_dim,
            num_heads=cfg.transformer_num_heads,
            mlp_dim=cfg.transformer_mlp_dim,
        ),
        num_multimask_outputs=cfg.num_multimask_outputs,
        iou_head_depth=cfg.iou_head_depth,
        iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        use_high_res_features=cfg.use_high_res_features,
        iou_prediction_use_sigmoid=cfg.iou_prediction_use_sigmoid,
        pred_obj_scores=cfg.pred_obj_scores,
        pred_obj_scores_mlp=cfg.pred_obj_scores_mlp,
        use_multimask_token_for_obj_ptr=cfg.use_multimask_token_for_obj_ptr,
        dynamic_multimask_via_stability=cfg.dynamic_multimask_via_stability,
    )
    perturb_(ref, seed=0)
    return ref.eval()


VARIANT_SWITCHES = {
    "plain-sam": dict(
        use_high_res_features=False,
        iou_prediction_use_sigmoid=False,
        pred_obj_scores=False,
        pred_obj_scores_mlp=False,
        use_multimask_token_for_obj_ptr=False,
        dynamic_multimask_via_stability=False,
    ),
    "linear-obj-head": dict(pred_obj_scores_mlp=False),
}


@pytest.mark.parametrize("switches", VARIANT_SWITCHES.values(), ids=VARIANT_SWITCHES.keys())
@pytest.mark.parametrize("multimask_output", [True, False])
def test_matches_reference_with_other_switches(switches: dict, multimask_output: bool) -> None:
    cfg = dataclasses.replace(MaskDecoderConfig(), **switches)
    ref = _ref_decoder(cfg)
    ours = MaskDecoder(cfg=cfg).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    _, _, image_pe = _pair("sam2.1-tiny", 256)
    inputs = _inputs(2, 16)
    if not cfg.use_high_res_features:
        inputs["high_res_features"] = None
    got, want = _run_both(
        ref, ours, image_pe, inputs, multimask_output=multimask_output, repeat_image=False
    )
    _assert_outputs_close(got, want)
    if not cfg.pred_obj_scores:
        assert (got[3] == 10.0).all()
    if not cfg.use_multimask_token_for_obj_ptr:
        assert got[2].shape == (2, 1, DIM)


def test_two_way_transformer_matches_reference() -> None:
    ref, ours, image_pe = _pair("sam2.1-tiny", 256)
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(2, DIM, 16, 16, generator=gen)
    tokens = torch.randn(2, 9, DIM, generator=gen)
    with torch.no_grad():
        # Ours broadcasts a batch-1 PE; the reference needs it repeated.
        queries, keys = ours.transformer(image, image_pe, tokens)
        ref_queries, ref_keys = ref.transformer(image, image_pe.expand(2, -1, -1, -1), tokens)
    assert queries.shape == (2, 9, DIM) and keys.shape == (2, 256, DIM)
    assert_parity(queries, ref_queries, name="queries")
    assert_parity(keys, ref_keys, name="keys")


def test_state_dict_keys_match_reference() -> None:
    ref, ours, _ = _pair("sam2.1-tiny", 256)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes == ref_shapes


def test_bf16_autocast_close_to_fp32() -> None:
    _, ours, image_pe = _pair("sam2.1-tiny", 256)
    inputs = _inputs(2, 16)
    with torch.no_grad():
        want = ours(image_pe=image_pe, **inputs, multimask_output=True, repeat_image=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = ours(image_pe=image_pe, **inputs, multimask_output=True, repeat_image=False)
    for name, g, w in zip(OUTPUT_NAMES, got, want, strict=True):
        assert torch.isfinite(g).all(), name
        assert_parity(g, w, ulps=BF16_ULPS, eps=BF16_EPS, name=name)


def test_bad_inputs_raise() -> None:
    _, ours, image_pe = _pair("sam2.1-tiny", 256)
    flags = dict(multimask_output=True, repeat_image=False)
    inputs = _inputs(2, 16)
    with pytest.raises(ValueError, match="high_res_features"):
        ours(image_pe=image_pe, **{**inputs, "high_res_features": None}, **flags)
    with pytest.raises(ValueError, match="image_pe"):
        ours(image_pe=image_pe.expand(2, -1, -1, -1), **inputs, **flags)
    with pytest.raises(ValueError, match="repeat_image"):
        ours(image_pe=image_pe, **_inputs(2, 16, n_img=3), **flags)
    with pytest.raises(ValueError, match="one image embedding"):
        ours(image_pe=image_pe, **inputs, multimask_output=True, repeat_image=True)
