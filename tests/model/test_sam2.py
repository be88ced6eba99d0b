"""Sam2Model: official state-dict layout for every variant, and step-by-step parity.

Parity: the reference SAM2VideoPredictor (a SAM2Base with the video settings our
configs carry) at random init, image size 256, its state dict loaded strictly into
ours, both run in fp32 on the same inputs; tolerance 1e-4 absolute unless stated.
"""

from __future__ import annotations

import pytest
import torch
from oracle import REFERENCE_CONFIGS, build_reference
from tolerance import assert_parity
from torch.overrides import TorchFunctionMode

from model.sam2.build import build_model
from model.sam2.config import VARIANTS, get_config
from model.sam2.model import ImageFeatures, Memory, PointInputs, Sam2Model

SIZE = 256


class _LinspaceOnCpu(TorchFunctionMode):
    """The reference's Hiera reads drop-path rates with .item(), impossible on meta."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.linspace:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


def _reference_shapes(name: str) -> dict[str, torch.Size]:
    from sam2.build_sam import build_sam2

    with torch.device("meta"), _LinspaceOnCpu():
        ref = build_sam2(REFERENCE_CONFIGS[name], device="meta")
    return {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_state_dict_matches_official_layout(name: str) -> None:
    expected = _reference_shapes(name)
    with torch.device("meta"):
        ours = build_model(get_config(name)).state_dict()
    assert set(ours) == set(expected), set(ours) ^ set(expected)
    mismatched = [k for k in ours if ours[k].shape != expected[k]]
    assert not mismatched
    assert sum(v.numel() for v in ours.values()) == sum(s.numel() for s in expected.values())


def test_tiny_parameter_count() -> None:
    with torch.device("meta"):
        model = build_model(get_config("sam2.1-tiny"))
    assert sum(v.numel() for v in model.state_dict().values()) == 38_962_754
    assert "no_obj_embed_spatial" in model.state_dict()
    with torch.device("meta"):
        sam2 = build_model(get_config("sam2-tiny"))
    assert "no_obj_embed_spatial" not in sam2.state_dict()
    assert isinstance(sam2.obj_ptr_tpos_proj, torch.nn.Identity)


# ---------------------------------------------------------------------- step parity


@pytest.fixture(scope="module", params=["sam2.1-tiny", "sam2-tiny"])
def pair(request):
    ref = build_reference(request.param, image_size=SIZE, video=True)
    ours = build_model(get_config(request.param, image_size=SIZE))
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


_FEATURES: dict[tuple[int, int], ImageFeatures] = {}


@torch.no_grad()
def _features(ours: Sam2Model, batch: int = 1) -> ImageFeatures:
    """Our features of one fixed image, computed once per model (the encoder is the slow part)."""
    key = (id(ours), 0)
    if key not in _FEATURES:
        _FEATURES[key] = ours.encode_image(_image(0))
    return _FEATURES[key] if batch == 1 else _FEATURES[key].expand(batch)


def _flat(feats: ImageFeatures):
    """Our features in the reference's (HW, B, C) level lists."""
    levels = [*feats.high_res, feats.vision]
    pos = [torch.zeros_like(x) for x in feats.high_res] + [feats.vision_pos]
    sizes = [tuple(x.shape[-2:]) for x in levels]
    return (
        [x.flatten(2).permute(2, 0, 1) for x in levels],
        [x.flatten(2).permute(2, 0, 1) for x in pos],
        sizes,
    )


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert_parity(actual, expected.to(actual.dtype))


def _image(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _ref_features(ref, image: torch.Tensor):
    out = ref.forward_image(image)
    _, feats, pos, sizes = ref._prepare_backbone_features(out)
    return feats, pos, sizes


def _high_res_ref(feats, sizes):
    return [
        x.permute(1, 2, 0).view(x.size(1), x.size(2), *s)
        for x, s in zip(feats[:-1], sizes, strict=True)
    ]


@torch.no_grad()
def test_encode_image_matches_reference(pair, gemm_route) -> None:
    ref, ours = pair
    image = _image(0, batch=2)
    feats, pos, sizes = _ref_features(ref, image)
    mine = ours.encode_image(image)
    h, w = sizes[-1]
    _close(mine.vision, feats[-1].permute(1, 2, 0).view(2, -1, h, w))
    _close(mine.vision_pos, pos[-1].permute(1, 2, 0).view(2, -1, h, w))
    for got, want in zip(mine.high_res, _high_res_ref(feats, sizes[:-1]), strict=True):
        _close(got, want)


def _sam_outputs_close(mine, want) -> None:
    names = ("low_res_multimasks", "high_res_multimasks", "ious", "low_res_masks")
    names += ("high_res_masks", "obj_ptr", "object_score_logits")
    # Logits of the mask decoder reach ~|20|; 1e-4 absolute is kept.
    for name, expected in zip(names, want, strict=True):
        _close(getattr(mine, name), expected)


@torch.no_grad()
@pytest.mark.parametrize("prompt", ["click", "clicks", "box", "mask", "none"])
def test_sam_heads_match_reference(pair, prompt: str) -> None:
    ref, ours = pair
    feats = _features(ours, 2)
    gen = torch.Generator().manual_seed(2)
    points, mask, multimask = None, None, False
    if prompt in ("click", "clicks"):
        n = 1 if prompt == "click" else 3
        points = PointInputs(
            coords=torch.rand(2, n, 2, generator=gen) * SIZE,
            labels=torch.randint(0, 2, (2, n), generator=gen, dtype=torch.int32),
        )
        multimask = prompt == "click"
    elif prompt == "box":
        points = PointInputs(
            coords=torch.tensor([[[30.0, 40.0], [150.0, 200.0]]] * 2),
            labels=torch.tensor([[2, 3]] * 2, dtype=torch.int32),
        )
    elif prompt == "mask":
        mask = torch.randn(2, 1, SIZE, SIZE, generator=gen)
    mine = ours.forward_sam_heads(
        feats.vision,
        points=points,
        mask_inputs=mask,
        high_res=feats.high_res,
        multimask_output=multimask,
    )
    want = ref._forward_sam_heads(
        backbone_features=feats.vision,
        point_inputs=None
        if points is None
        else {"point_coords": points.coords, "point_labels": points.labels},
        mask_inputs=mask,
        high_res_features=list(feats.high_res),
        multimask_output=multimask,
    )
    _sam_outputs_close(mine, want)


@torch.no_grad()
def test_mask_as_output_matches_reference(pair) -> None:
    ref, ours = pair
    feats = _features(ours, 2)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[0, :, 40:120, 60:200] = 1.0  # object 1 is absent: empty mask
    mine = ours.use_mask_as_output(feats.vision, feats.high_res, mask)
    want = ref._use_mask_as_output(feats.vision, list(feats.high_res), mask)
    _sam_outputs_close(mine, want)
    assert mine.object_score_logits[0].item() > 0 > mine.object_score_logits[1].item()


def _random_output_dict(ours: Sam2Model, cond: list[int], non_cond: list[int], b: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    s, mem, c = ours.cfg.feat_size, ours.cfg.mem_dim, ours.cfg.hidden_dim
    pos = ours.memory_encoder.position_encoding(torch.zeros(b, mem, s, s))

    def entry():
        feats = torch.randn(b, mem, s, s, generator=gen).to(torch.bfloat16)
        return {
            "maskmem_features": feats,
            "maskmem_pos_enc": [pos],
            "obj_ptr": torch.randn(b, c, generator=gen),
        }

    return {
        "cond_frame_outputs": {t: entry() for t in cond},
        "non_cond_frame_outputs": {t: entry() for t in non_cond},
    }


def _resolve(plan, output_dict):
    """What the session does: turn a plan into memories and pointers it holds."""
    cond, non_cond = output_dict["cond_frame_outputs"], output_dict["non_cond_frame_outputs"]

    def lookup(t):
        if t in non_cond:
            return non_cond[t]
        return cond[t] if t in plan.unselected_cond else None

    def memory(out):
        return Memory(features=out["maskmem_features"], obj_ptr=out["obj_ptr"])

    memories = [(0, memory(cond[t])) for t in plan.cond]
    memories += [(p, memory(lookup(t))) for p, t in plan.recent if lookup(t) is not None]
    pointers = [(d, cond[t]["obj_ptr"]) for d, t in plan.pointer_cond]
    pointers += [(d, lookup(t)["obj_ptr"]) for d, t in plan.pointer_recent if lookup(t)]
    return memories, pointers


@torch.no_grad()
@pytest.mark.parametrize(
    ("frame", "cond", "non_cond", "reverse", "num_frames"),
    [
        (9, [0], list(range(1, 9)), False, 40),
        (5, [8], [6, 7], True, 10),
        (30, [2, 10, 25], list(range(11, 25)) + list(range(26, 30)), False, 31),
        (4, [6], [2, 3], False, 8),
    ],
)
def test_memory_conditioning_matches_reference(pair, frame, cond, non_cond, reverse, num_frames):
    ref, ours = pair
    feats = _features(ours, 2)
    output_dict = _random_output_dict(ours, cond, non_cond, b=2, seed=frame)
    plan = ours.plan_memories(frame, cond, num_frames=num_frames, reverse=reverse)
    memories, pointers = _resolve(plan, output_dict)
    mine = ours.condition_on_memories(
        feats,
        is_init_cond_frame=False,
        memories=memories,
        pointers=pointers,
        max_pointers=plan.max_pointers,
    )
    flat = [feats.vision.flatten(2).permute(2, 0, 1)]
    flat_pos = [feats.vision_pos.flatten(2).permute(2, 0, 1)]
    want = ref._prepare_memory_conditioned_features(
        frame_idx=frame,
        is_init_cond_frame=False,
        current_vision_feats=flat,
        current_vision_pos_embeds=flat_pos,
        feat_sizes=[feats.vision.shape[-2:]],
        output_dict=output_dict,
        num_frames=num_frames,
        track_in_reverse=reverse,
    )
    _close(mine, want)


@torch.no_grad()
def test_initial_conditioning_frame_matches_reference(pair) -> None:
    ref, ours = pair
    feats = _features(ours)
    mine = ours.condition_on_memories(feats, is_init_cond_frame=True)
    want = ref._prepare_memory_conditioned_features(
        frame_idx=0,
        is_init_cond_frame=True,
        current_vision_feats=[feats.vision.flatten(2).permute(2, 0, 1)],
        current_vision_pos_embeds=[feats.vision_pos.flatten(2).permute(2, 0, 1)],
        feat_sizes=[feats.vision.shape[-2:]],
        output_dict={},
        num_frames=4,
    )
    _close(mine, want)


def test_plan_respects_max_cond_frames_and_stride() -> None:
    base = get_config("sam2.1-tiny", image_size=SIZE)
    from dataclasses import replace

    with torch.device("meta"):
        model = build_model(
            replace(base, max_cond_frames_in_attn=2, memory_temporal_stride_for_eval=3)
        )
    plan = model.plan_memories(20, [1, 5, 18, 40], num_frames=50)
    assert plan.cond == (18, 40)
    assert plan.unselected_cond == {1, 5}
    assert [t for _, t in plan.recent] == [6, 9, 12, 15, 18, 19]
    assert [d for d, _ in plan.pointer_cond] == [2]  # 40 is in the future
    assert plan.pointer_recent[0] == (1, 19) and len(plan.pointer_recent) == 15


@torch.no_grad()
@pytest.mark.parametrize("from_points", [True, False])
def test_encode_memory_matches_reference(pair, from_points: bool) -> None:
    ref, ours = pair
    feats = _features(ours, 2)
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 1, SIZE, SIZE, generator=gen) * 5
    scores = torch.tensor([[3.0], [-2.0]])
    mine_feats, mine_pos = ours.encode_memory(
        feats.vision, logits, scores, is_mask_from_pts=from_points
    )
    want_feats, want_pos = ref._encode_new_memory(
        current_vision_feats=[feats.vision.flatten(2).permute(2, 0, 1)],
        feat_sizes=[feats.vision.shape[-2:]],
        pred_masks_high_res=logits,
        object_score_logits=scores,
        is_mask_from_pts=from_points,
    )
    _close(mine_feats, want_feats)
    _close(mine_pos, want_pos[-1])


@torch.no_grad()
@pytest.mark.parametrize("case", ["init_click", "tracking", "mask", "refine"])
def test_track_step_matches_reference(pair, case: str, gemm_route) -> None:
    ref, ours = pair
    feats = _features(ours)
    ref_feats, ref_pos, sizes = _flat(feats)
    output_dict = _random_output_dict(ours, [0], [4, 5], b=1, seed=9)
    frame, init = (0, True) if case in ("init_click", "mask") else (6, False)
    points = mask = prev = None
    if case in ("init_click", "refine"):
        points = PointInputs(
            coords=torch.tensor([[[100.0, 120.0]]]), labels=torch.tensor([[1]], dtype=torch.int32)
        )
    if case == "mask":
        mask = torch.zeros(1, 1, SIZE, SIZE)
        mask[..., 50:150, 70:190] = 1
    if case == "refine":
        prev = torch.randn(1, 1, SIZE // 4, SIZE // 4, generator=torch.Generator().manual_seed(1))
    plan = ours.plan_memories(frame, [0], num_frames=10)
    memories, pointers = ([], []) if init else _resolve(plan, output_dict)
    mine = ours.track_step(
        feats,
        is_init_cond_frame=init,
        points=points,
        mask_inputs=mask,
        memories=memories,
        pointers=pointers,
        max_pointers=plan.max_pointers,
        prev_logits=prev,
    )
    want = ref.track_step(
        frame_idx=frame,
        is_init_cond_frame=init,
        current_vision_feats=ref_feats,
        current_vision_pos_embeds=ref_pos,
        feat_sizes=sizes,
        point_inputs=None
        if points is None
        else {"point_coords": points.coords, "point_labels": points.labels},
        mask_inputs=mask,
        output_dict=output_dict,
        num_frames=10,
        prev_sam_mask_logits=prev,
    )
    _close(mine.sam.low_res_masks, want["pred_masks"])
    _close(mine.sam.high_res_masks, want["pred_masks_high_res"])
    _close(mine.sam.obj_ptr, want["obj_ptr"])
    _close(mine.sam.object_score_logits, want["object_score_logits"])
    _close(mine.memory_features, want["maskmem_features"])
    _close(mine.memory_pos, want["maskmem_pos_enc"][-1])
