"""Cancelling a find (`find(..., cancel=event)` -> `FindCancelled`): where it stops, that a
cancelled frame leaves nothing half-way in the caches, and that an event set from another
thread stops a running find. Small random-init finder (`small_finder_config`)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from model.sam3.cancel import cancellable, poll
from model.sam3.finder import FindCancelled, Sam3Finder, small_finder_config

FRAME = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def finder() -> Sam3Finder:
    torch.manual_seed(0)
    return Sam3Finder(cfg=small_finder_config()).eval()


def _counter(module: torch.nn.Module) -> list[int]:
    calls = [0]

    def hook(*_args: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


def _set_in(module: torch.nn.Module, event: threading.Event) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda *_args: event.set())


def test_a_cancel_set_before_the_find_stops_it_before_anything_is_computed(finder: Sam3Finder):
    finder.clear_cache()
    text = finder.backbone.language_backbone
    event = threading.Event()
    event.set()
    with pytest.raises(FindCancelled):
        finder.find(FRAME, "a cat", cancel=event)
    assert not finder._frames and not text._cache


def test_a_cancel_during_the_vit_stops_before_its_next_block_and_caches_nothing(
    finder: Sam3Finder,
):
    finder.clear_cache()
    blocks = finder.backbone.vision_backbone.trunk.blocks
    after = _counter(blocks[2])
    event = threading.Event()
    handle = _set_in(blocks[1], event)
    try:
        with pytest.raises(FindCancelled, match="cancelled"):
            finder.find(FRAME, "a cat", cancel=event)
    finally:
        handle.remove()
    assert after[0] == 0 and not finder._frames
    # The next find computes the frame whole, as if the cancelled one had never run.
    again = finder.find(FRAME, "a cat", threshold=0.0)
    finder.clear_cache()
    fresh = finder.find(FRAME, "a cat", threshold=0.0)
    assert torch.equal(again.scores, fresh.scores) and after[0] == 2


def test_a_global_block_is_cancelled_between_its_attention_and_its_mlp(finder: Sam3Finder):
    finder.clear_cache()
    block = finder.backbone.vision_backbone.trunk.blocks[1]
    assert block.window == 0, "block 1 of the small config attends globally"
    mlp = _counter(block.mlp)
    event = threading.Event()
    handle = _set_in(block.attn, event)
    try:
        with pytest.raises(FindCancelled):
            finder.find(FRAME, "a cat", cancel=event)
    finally:
        handle.remove()
    assert mlp[0] == 0 and not finder._frames


@pytest.mark.parametrize("where", ["fusion", "decoder", "pixel decoder"])
def test_a_cancel_in_the_heads_keeps_the_completed_frame_cached(finder: Sam3Finder, where: str):
    finder.clear_cache()
    module = {
        "fusion": finder.transformer.encoder.layers[0].cross_attn_image,
        "decoder": finder.transformer.decoder.layers[0],
        "pixel decoder": finder.segmentation_head.pixel_decoder.norms[0],
    }[where]
    backbone = _counter(finder.backbone.vision_backbone)
    heads = _counter(finder.segmentation_head)
    event = threading.Event()
    handle = _set_in(module, event)
    try:
        with pytest.raises(FindCancelled):
            finder.find(FRAME, "a cat", threshold=0.0, cancel=event)
    finally:
        handle.remove()
    assert heads[0] == 0  # stopped inside the heads, not after them
    # The frame's features were complete before the heads: kept, not computed again.
    assert len(finder._frames) == 1
    got = finder.find(FRAME, "a cat", threshold=0.0, cancel=threading.Event())
    assert backbone[0] == 1 and len(got.scores) == small_finder_config().heads.decoder.num_queries


def test_an_event_set_from_another_thread_stops_a_running_find(finder: Sam3Finder):
    finder.clear_cache()
    started, cancel = threading.Event(), threading.Event()

    def block0(*_args: object) -> None:  # the find is running: let the other thread cancel
        started.set()
        assert cancel.wait(timeout=10)

    handle = finder.backbone.vision_backbone.trunk.blocks[0].register_forward_hook(block0)
    canceller = threading.Thread(target=lambda: started.wait(10) and cancel.set())
    canceller.start()
    try:
        with pytest.raises(FindCancelled):
            finder.find(FRAME, "a dog", cancel=cancel)
    finally:
        handle.remove()
        canceller.join()
    assert started.is_set() and not finder._frames


def test_polling_outside_a_cancellable_find_never_raises():
    event = threading.Event()
    event.set()
    poll()  # no find running here: nothing to cancel
    with pytest.raises(FindCancelled), cancellable(event):
        pass
    with cancellable(None):
        poll()
