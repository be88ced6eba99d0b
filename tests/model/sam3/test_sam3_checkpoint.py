"""Loading a SAM 3 checkpoint (`detector.*` keys, tracker keys skipped) into the finder,
and the one line each bad file gets."""

from __future__ import annotations

import functools
from pathlib import Path

import golden_find as golden
import pytest
import torch
from sam3_heads_support import PARAM
from sam3_oracle import require_sam3, seeded_value
from test_sam3_find import find_case, seeded_finder

from model.sam3.checkpoint import CheckpointError, finder_from_state_dict, load_finder
from model.sam3.finder import FinderConfig, Sam3Finder

FIXTURE = Path(__file__).parent / "fixtures" / "find.pt"


@functools.cache
def _fixture() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE, weights_only=True)


def _checkpoint_state(detector: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A sam3.pt-like state dict: the detector's entries under `detector.`, with the
    tracker's and the tracker-only neck branches beside them."""
    state = {f"detector.{k}": v for k, v in detector.items()}
    state["detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.weight"] = torch.ones(2, 2)
    state["tracker.maskmem_backbone.mask_downsampler.encoder.0.weight"] = torch.ones(3)
    state["tracker.sam_mask_decoder.iou_token.weight"] = torch.ones(1, 4)
    return state


def _seeded_detector() -> dict[str, torch.Tensor]:
    """The fixture's oracle names and shapes, name-seeded; the RoPE tables as ours builds
    them (the oracle's are the same values, `test_sam3_vit`)."""
    t = _fixture()
    state = {
        key.removeprefix(PARAM): seeded_value(key.removeprefix(PARAM), tuple(shape.tolist()))
        for key, shape in t.items()
        if key.startswith(PARAM)
    }
    built = Sam3Finder(cfg=golden.CONFIG).state_dict()
    state.update({k: v for k, v in built.items() if k.endswith("attn.freqs_cis")})
    return state


def _save(tmp_path: Path, obj: object, name: str = "sam3.pt") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _assert_same_find(loaded: Sam3Finder) -> None:
    t = _fixture()
    reference = seeded_finder(t)
    for case in golden.CASES:
        got, want = find_case(loaded, t, case), find_case(reference, t, case)
        assert torch.equal(got.scores, want.scores) and torch.equal(got.boxes, want.boxes)
        assert torch.equal(got.masks, want.masks)


@pytest.mark.parametrize("wrapped", [True, False])
def test_checkpoint_with_detector_and_tracker_keys_loads_and_finds_the_same(tmp_path, wrapped):
    state = _checkpoint_state(_seeded_detector())
    path = _save(tmp_path, {"model": state} if wrapped else state)
    loaded = load_finder(path, config=golden.CONFIG)
    assert not any(p.is_meta for p in loaded.parameters())
    assert not any(b.is_meta for b in loaded.buffers())
    _assert_same_find(loaded)


def test_the_oracles_own_state_dict_loads(tmp_path):
    require_sam3()
    oracle = golden.build_oracle()
    path = _save(tmp_path, {"model": _checkpoint_state(oracle.state_dict())})
    _assert_same_find(load_finder(path, config=golden.CONFIG))


def test_each_bad_file_gets_one_line(tmp_path):
    small = {"detector.backbone.vision_backbone.trunk.ln_pre.weight": torch.ones(4096)}
    blob = _save(tmp_path, {"model": small}, "small.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(blob[: len(blob) // 2])
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n" * 50)
    image = tmp_path / "photo.pt"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))
    sam2 = {"model": {"image_encoder.trunk.patch_embed.proj.weight": torch.ones(96, 3, 7, 7)}}
    cases = {
        "truncated": (truncated, "truncated"),
        "text": (text, "not a PyTorch checkpoint"),
        "image": (image, "not a PyTorch checkpoint"),
        "absent": (tmp_path / "absent.pt", "not found"),
        "folder": (tmp_path, "is a folder"),
        "sam2": (_save(tmp_path, sam2, "sam2.pt"), "this is a SAM 2 checkpoint"),
        "other": (_save(tmp_path, {"w": torch.ones(3)}, "o.pt"), "not a SAM 3 checkpoint"),
        "list": (_save(tmp_path, [1, 2], "l.pt"), "no model weights found"),
    }
    for case, (path, message) in cases.items():
        _assert_one_line(lambda path=path: load_finder(path, config=golden.CONFIG), message, case)


def _assert_one_line(call, message: str, case: str) -> None:  # noqa: ANN001
    with pytest.raises(CheckpointError) as err:
        call()
    text = str(err.value)
    assert isinstance(err.value, ValueError)
    assert message in text and "\n" not in text, f"{case}: {text}"


def test_each_bad_state_dict_gets_one_line():
    """Wrong keys, shapes or dtypes, named (checked before any tensor is taken)."""
    good = _checkpoint_state(_seeded_detector())
    key = "detector.transformer.decoder.query_embed.weight"
    cases = {
        "misshaped": ({**good, key: good[key][:-1]}, "1 mis-shaped (transformer.decoder"),
        "missing": (
            {k: v for k, v in good.items() if "segmentation_head.instance_seg_head" not in k},
            "2 missing (segmentation_head.instance_seg_head",
        ),
        "unexpected": (
            {**good, "detector.extra_head.weight": torch.ones(3)},
            "1 unexpected (extra_head.weight)",
        ),
        "ints": ({**good, key: good[key].long()}, "holds int64 values"),
    }
    for case, (state, message) in cases.items():
        _assert_one_line(
            lambda state=state: finder_from_state_dict(state, golden.CONFIG, name="x.pt"),
            message,
            case,
        )


def test_a_checkpoint_of_other_sizes_names_the_mismatch():
    """The reduced checkpoint against the released sizes (given, not read off the weights):
    mis-shaped and missing keys."""
    with pytest.raises(CheckpointError, match="does not fit the SAM 3 finder: .*missing"):
        finder_from_state_dict(_checkpoint_state(_seeded_detector()), FinderConfig())
