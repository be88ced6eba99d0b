"""The assembled finder's `find` against Meta's `Sam3Processor` end to end (golden fixture
and live oracle), its caches, and its answers to bad input."""

from __future__ import annotations

import functools
from pathlib import Path

import golden_find as golden
import numpy as np
import pytest
import torch
from sam3_heads_support import PARAM, assert_informative
from sam3_oracle import require_sam3, seeded_value
from tolerance import BF16_EPS, BF16_ULPS, assert_parity

from model.sam3 import finder as finder_module
from model.sam3.finder import Instances, Sam3Finder
from model.sam3.tokenizer import PhraseError

FIXTURE = Path(__file__).parent / "fixtures" / "find.pt"


def seeded_finder(fixture: dict[str, torch.Tensor]) -> Sam3Finder:
    """Ours at the fixture's size with `seeded_value` weights by the oracle's names; the
    RoPE tables (complex buffers, not seeded) are ours as computed."""
    ours = Sam3Finder(cfg=golden.CONFIG)
    state = {
        key.removeprefix(PARAM): seeded_value(key.removeprefix(PARAM), tuple(shape.tolist()))
        for key, shape in fixture.items()
        if key.startswith(PARAM)
    }
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert not unexpected
    assert missing and all(k.endswith("attn.freqs_cis") for k in missing), missing
    return ours.eval()


@functools.cache
def _golden() -> tuple[dict[str, torch.Tensor], Sam3Finder]:
    t = torch.load(FIXTURE, weights_only=True)
    return t, seeded_finder(t)


def find_case(finder: Sam3Finder, t: dict[str, torch.Tensor], case: str, **kw) -> Instances:
    boxes = labels = None
    if case == "exemplar":
        boxes, labels = np.array(golden.BOXES), np.array(golden.LABELS)
    return finder.find(t["frame"], golden.PHRASES[case], boxes, labels, threshold=0.0, **kw)


def _by_score(t: dict[str, torch.Tensor], case: str) -> dict[str, torch.Tensor]:
    """The oracle's outputs (query order) in `find`'s order: best score first."""
    order = t[f"{case}/scores"].argsort(descending=True, stable=True)
    return {name: t[f"{case}/{name}"][order] for name in golden.OUTPUTS}


def check_case(
    got: Instances, expected: dict[str, torch.Tensor], *, ulps: float = 64, eps: float = 0
) -> None:
    kw = {"ulps": ulps, "eps": eps} if eps else {}
    scores = expected["scores"]
    assert_informative(scores, "scores")
    # Distinct scores: the order is the oracle's, not a coin toss between near-equals.
    assert (scores[:-1] - scores[1:]).min() > 1e-5
    assert_informative(expected["boxes"], "boxes")
    masks = expected["masks"]
    assert 0.05 < masks.float().mean() < 0.95, "masks all empty or all full"
    assert got.masks.shape == masks.shape and got.masks.dtype == torch.bool
    assert got.queries is not None and got.queries.shape == scores.shape
    assert_parity(got.scores, scores, name="scores", **kw)
    assert_parity(got.boxes, expected["boxes"], name="boxes", **kw)
    differ = (got.masks != masks) & ~expected["uncertain"]
    limit = 0 if not eps else masks.numel() // 200  # bf16 may move edges by a pixel
    assert differ.sum() <= limit, f"{int(differ.sum())} mask pixels differ"


def _check_all(t: dict[str, torch.Tensor], finder: Sam3Finder) -> None:
    for case in golden.CASES:
        check_case(find_case(finder, t, case), _by_score(t, case))
    # The exemplars change the prompt, so they must change what is found.
    assert not torch.allclose(t["text/scores"], t["exemplar/scores"])


def test_find_matches_golden_fixture():
    _check_all(*_golden())


def test_find_matches_live_oracle():
    require_sam3()
    t = golden.make()
    _check_all(t, seeded_finder(t))


def test_find_in_fast_mode_stays_within_bf16_rounding():
    t, finder = _golden()
    got = find_case(finder, t, "exemplar", precision="fast")
    expected = _by_score(t, "exemplar")
    assert_parity(got.scores, expected["scores"], ulps=BF16_ULPS, eps=BF16_EPS, name="scores")
    # Query by query (near-equal scores may swap in bf16): boxes within a pixel or so.
    boxes = t["exemplar/boxes"][got.queries]
    assert_parity(got.boxes, boxes, ulps=BF16_ULPS, eps=BF16_EPS, name="boxes")


def test_instances_name_their_queries_in_score_order():
    t, finder = _golden()
    got = find_case(finder, t, "text")
    assert sorted(got.queries.tolist()) == list(range(golden.QUERIES))
    assert torch.equal(got.scores, got.scores.sort(descending=True).values)
    assert_parity(got.scores, t["text/scores"][got.queries], name="scores by query")


def test_threshold_keeps_only_higher_scores_best_first():
    t, finder = _golden()
    every = find_case(finder, t, "text")
    cut = float(every.scores[4])
    some = finder.find(t["frame"], golden.PHRASES["text"], threshold=cut)
    assert len(some.scores) == 4 and bool((some.scores > cut).all())
    assert torch.equal(some.masks, every.masks[:4])
    assert torch.equal(some.boxes, every.boxes[:4])
    none = finder.find(t["frame"], golden.PHRASES["text"], threshold=1.0)
    assert none.masks.shape == (0, *golden.FRAME_HW) and none.boxes.shape == (0, 4)


def test_max_instances_keeps_the_best_only():
    t, finder = _golden()
    every = find_case(finder, t, "text")
    assert len(every.scores) > 3
    best = finder.find(t["frame"], golden.PHRASES["text"], threshold=0.0, max_instances=3)
    assert torch.equal(best.queries, every.queries[:3])
    assert torch.equal(best.masks, every.masks[:3]) and best.masks.any()
    assert torch.equal(best.scores, every.scores[:3])


def test_masks_resized_a_few_at_a_time_are_the_same(monkeypatch):
    t, finder = _golden()
    whole = find_case(finder, t, "exemplar")
    monkeypatch.setattr(finder_module, "_MASK_CHUNK", 5)
    assert torch.equal(find_case(finder, t, "exemplar").masks, whole.masks)


def _count_backbone_calls(finder: Sam3Finder) -> list[int]:
    calls = [0]

    def hook(*_args: object) -> None:
        calls[0] += 1

    finder.backbone.vision_backbone.register_forward_hook(hook)
    return calls


def test_second_phrase_or_exemplar_on_the_same_frame_does_not_rerun_the_backbone():
    t = torch.load(FIXTURE, weights_only=True)
    finder = seeded_finder(t)
    calls = _count_backbone_calls(finder)
    text = finder.backbone.language_backbone
    first = find_case(finder, t, "text")
    find_case(finder, t, "exemplar")
    assert calls[0] == 1
    hits = text.cache_hits
    again = find_case(finder, t, "text", frame_key=None)
    assert calls[0] == 1 and text.cache_hits == hits + 1  # neither encoder ran
    assert torch.equal(again.scores, first.scores)
    # Another frame runs it again; the named one is cached by its key.
    other = t["frame"].flip(0).contiguous()
    finder.find(other, "a cat", frame_key="frame 2", threshold=0.0)
    finder.find(other, "a dog", frame_key="frame 2", threshold=0.0)
    assert calls[0] == 2
    finder.find(t["frame"], "a dog", threshold=0.0)  # still cached (two frames kept)
    assert calls[0] == 2


def test_new_weights_or_precision_recompute_the_frame():
    t = torch.load(FIXTURE, weights_only=True)
    finder = seeded_finder(t)
    calls = _count_backbone_calls(finder)
    first = find_case(finder, t, "text")
    find_case(finder, t, "text", precision="fast")
    assert calls[0] == 2
    state = {
        k: v * 0.5 if k.endswith("conv_3x3.weight") else v for k, v in finder.state_dict().items()
    }
    finder.load_state_dict(state)
    changed = find_case(finder, t, "text")
    assert calls[0] == 3 and not torch.equal(changed.scores, first.scores)


def test_exemplar_boxes_alone_are_found_with_the_visual_phrase():
    t, finder = _golden()
    got = finder.find(t["frame"], boxes=np.array(golden.BOXES[:1]), threshold=0.0)
    assert len(got.scores) == golden.QUERIES and not got.truncated
    assert torch.isfinite(got.scores).all()


def test_a_long_phrase_is_flagged_truncated():
    t, finder = _golden()
    assert finder.find(t["frame"], "word " * 40, threshold=0.9).truncated
    assert not finder.find(t["frame"], "word", threshold=0.9).truncated


FRAME = np.zeros((60, 80, 3), np.uint8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"phrase": "   "}, "phrase"),
        ({}, "nothing to find"),
        ({"phrase": "cat", "boxes": [[-1, 0, 10, 10]]}, "not inside"),
        ({"phrase": "cat", "boxes": [[0, 0, 81, 10]]}, "not inside"),
        ({"phrase": "cat", "boxes": [[5, 5, 5, 10]]}, "no area"),
        ({"phrase": "cat", "boxes": [[0, 0, 10, 10]] * 17}, "at most 16"),
        ({"phrase": "cat", "boxes": [[0, 0, 10]]}, "(N, 4)"),
        ({"phrase": "cat", "boxes": [[0, 0, 10, 10]], "box_labels": [1, 0]}, "2 box labels"),
        ({"phrase": "cat", "boxes": [["a", 0, 10, 10]]}, "numbers"),
        ({"phrase": 3}, "must be text"),
        ({"phrase": "cat", "box_labels": [True]}, "without boxes"),
        ({"phrase": "cat", "frame": FRAME.astype(np.float32)}, "uint8"),
        ({"phrase": "cat", "frame": FRAME[..., :2]}, "(H, W, 3)"),
        ({"phrase": "cat", "frame": FRAME[0]}, "(H, W, 3)"),
        ({"phrase": "cat", "frame": [[1, 2, 3]]}, "array"),
    ],
)
def test_bad_input_is_a_one_line_value_error(kwargs: dict, message: str):
    _, finder = _golden()
    kwargs = {"frame": FRAME, **kwargs}
    with pytest.raises(ValueError) as err:
        finder.find(**kwargs)
    text = str(err.value)
    assert message in text and "\n" not in text, text
    if kwargs.get("phrase") == "   ":  # the tokenizer's own error
        assert isinstance(err.value, PhraseError)
