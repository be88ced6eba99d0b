"""Packed masks, the byte-bounded feature cache and the memory bank's exact disk spill."""

from __future__ import annotations

import numpy as np
import torch

from model.engine.feature_cache import FeatureCache, features_nbytes
from model.engine.mask_store import PackedMask
from model.engine.memory_bank import FrameOutput, MemoryBank, ObjectTrack, Tensors
from model.sam2.model import ImageFeatures


def test_packed_mask_round_trip_is_small() -> None:
    mask = np.zeros((1080, 1920), bool)
    mask[200:600, 300:900] = True
    packed = PackedMask.pack(mask)
    np.testing.assert_array_equal(packed.unpack(), mask)
    assert packed.nbytes < 5_000  # vs 2 MB as bools


def _features(value: float) -> ImageFeatures:
    x = torch.full((1, 4, 2, 2), value)
    return ImageFeatures(vision=x, vision_pos=x, high_res=(torch.zeros(1, 2, 8, 8),))


def test_feature_cache_evicts_least_recently_used() -> None:
    one = features_nbytes(_features(0))
    cache = FeatureCache(max_bytes=2 * one)
    for frame in range(3):
        cache.put(frame, _features(frame))
        if frame == 1:
            assert cache.get(0) is not None  # 0 becomes the most recent
    assert 0 in cache and 2 in cache and 1 not in cache
    assert cache.bytes_used == 2 * one


def _tensors(seed: int) -> Tensors:
    gen = torch.Generator().manual_seed(seed)
    return Tensors(
        logits=torch.randn(1, 1, 8, 8, generator=gen),
        obj_ptr=torch.randn(1, 16, generator=gen),
        score=torch.randn(1, 1, generator=gen),
        memory=torch.randn(1, 4, 2, 2, generator=gen).to(torch.bfloat16),
    )


def test_memory_bank_spills_and_reads_back_exactly() -> None:
    bank = MemoryBank(ram_frames=2, device=torch.device("cpu"))
    track = ObjectTrack()
    mask = PackedMask.pack(np.zeros((4, 4), bool))
    originals = {f: _tensors(f) for f in range(6)}
    for frame, tensors in originals.items():
        bank.put(1, track, frame, FrameOutput(mask, 0.0, 0.0, False, tensors))
    assert bank.frames_in_ram == 2
    assert [track.outputs[f].tensors is None for f in range(6)] == [True] * 4 + [False] * 2
    for frame, expected in originals.items():
        got = bank.tensors(1, track, frame)
        for name in ("logits", "obj_ptr", "score", "memory"):
            assert torch.equal(getattr(got, name), getattr(expected, name))
            assert getattr(got, name).dtype == getattr(expected, name).dtype
    assert bank.frames_in_ram == 2
    bank.close()
