import time

import numpy as np
import pytest

from app.project.mask_codec import (
    CHUNK_FRAMES,
    ChunkError,
    decode_chunk,
    decode_rle,
    encode_chunk,
    encode_rle,
)
from app.project.mask_store import MaskStore


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r**2


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((5, 7), bool),
        np.ones((5, 7), bool),
        np.eye(6, dtype=bool),
        np.array([[True]]),
        np.array([[False]]),
        np.random.default_rng(0).random((31, 17)) > 0.5,
        _disc((40, 60), 20, 30, 10),
    ],
)
def test_rle_round_trips_bit_exactly(mask):
    data = encode_rle(mask)
    out = decode_rle(data, mask.shape)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, mask)


def test_rle_is_row_major_background_first():
    mask = np.array([[True, True, False], [False, True, True]])
    runs = np.frombuffer(encode_rle(mask), "<u4").tolist()
    assert runs == [0, 2, 2, 2]


def test_rle_accepts_non_contiguous_and_uint8_input():
    base = _disc((30, 40), 15, 20, 8)
    np.testing.assert_array_equal(decode_rle(encode_rle(base.T), (40, 30)), base.T)
    np.testing.assert_array_equal(decode_rle(encode_rle(base.astype(np.uint8)), base.shape), base)


def test_rle_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        encode_rle(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="pixels"):
        decode_rle(encode_rle(np.zeros((4, 4), bool)), (4, 5))
    with pytest.raises(ValueError, match="uint32"):
        decode_rle(b"\x01\x02\x03", (1, 1))


def test_rle_1080p_is_fast():
    mask = _disc((1080, 1920), 500, 900, 300) ^ _disc((1080, 1920), 520, 950, 80)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        out = decode_rle(encode_rle(mask), mask.shape)
        best = min(best, time.perf_counter() - t0)
    np.testing.assert_array_equal(out, mask)
    # Generous bound for a loaded 2-core CI box; typically ~1.5 ms.
    assert best < 0.05


def test_store_set_get_status():
    store = MaskStore((20, 30), num_frames=10)
    mask = _disc((20, 30), 10, 15, 5)
    store.set(3, 1, mask)
    store.set(3, 2, None)
    store.set(4, 1, mask, present=False)
    assert store.status(3, 1) == "present"
    assert store.status(3, 2) == "absent"
    assert store.status(4, 1) == "absent"
    assert store.status(5, 1) == "none"
    np.testing.assert_array_equal(store.get(3, 1), mask)
    assert store.get(3, 2) is None and store.get(9, 9) is None
    assert list(store.objects_at(3)) == [1]
    assert store.frames(1) == [3, 4]
    assert len(store) == 3
    assert 0 < store.nbytes < mask.size // 4


def test_store_empty_present_mask_differs_from_absent():
    store = MaskStore((8, 8))
    store.set(0, 1, np.zeros((8, 8), bool))
    assert store.status(0, 1) == "present"
    assert not store.get(0, 1).any()


def test_store_clear_and_remove():
    store = MaskStore((8, 8))
    m = np.ones((8, 8), bool)
    for f in range(3):
        store.set(f, 1, m)
        store.set(f, 2, m)
    store.clear_frame(1, 1)
    assert store.frames(1) == [0, 2]
    store.remove_object(2)
    assert store.frames(2) == []
    assert store.object_ids() == [1]
    store.clear_frame(7, 7)  # unknown entries are a no-op


def test_store_validates_input():
    store = MaskStore((8, 8), num_frames=5)
    with pytest.raises(ValueError, match="shape"):
        store.set(0, 1, np.zeros((8, 9), bool))
    with pytest.raises(ValueError, match="out of range"):
        store.set(5, 1, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="obj_id"):
        store.set(0, -1, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="frame"):
        store.set(True, 1, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="pixels"):
        store.set_encoded(0, 1, encode_rle(np.zeros((8, 7), bool)))
    with pytest.raises(ValueError, match="positive"):
        MaskStore((0, 8))


def test_dirty_tracking_is_per_target():
    store = MaskStore((4, 4))
    m = np.ones((4, 4), bool)
    store.set(0, 1, m)
    store.set(CHUNK_FRAMES + 1, 1, m)
    assert store.dirty_chunks("a") == [0, 1]
    store.mark_clean("a", store.chunk_revisions())
    assert store.dirty_chunks("a") == []
    assert store.dirty_chunks("b") == [0, 1]
    store.set(2 * CHUNK_FRAMES, 3, m)
    store.clear_frame(0, 1)
    assert store.dirty_chunks("a") == [0, 2]
    assert store.chunks() == [1, 2]  # chunk 0 is dirty but now empty


def test_chunk_codec_round_trip_and_damage():
    store = MaskStore((6, 9))
    store.set(1, 4, _disc((6, 9), 3, 4, 2))
    store.set(2, 4, None)
    entries = store.chunk_entries(0)
    blob = encode_chunk(0, (6, 9), entries)
    assert decode_chunk(blob, (6, 9)) == (0, entries)
    with pytest.raises(ChunkError, match="truncated|checksum"):
        decode_chunk(blob[:-7], (6, 9))
    flipped = bytearray(blob)
    flipped[30] ^= 0xFF
    with pytest.raises(ChunkError, match="checksum"):
        decode_chunk(bytes(flipped), (6, 9))
    with pytest.raises(ChunkError, match="video"):
        decode_chunk(blob, (6, 10))
    with pytest.raises(ChunkError, match="not a Masklet"):
        decode_chunk(b"X" * 40, (6, 9))


def test_memory_stays_bounded_by_spilling_chunks():
    shape = (60, 80)
    masks = {f: _disc(shape, 30, f % 80, 5 + f % 20) for f in range(0, 8 * CHUNK_FRAMES, 7)}
    one_chunk = sum(len(encode_rle(m)) for f, m in masks.items() if f < CHUNK_FRAMES)
    store = MaskStore(shape, memory_budget=2 * one_chunk)
    for f, m in masks.items():
        store.set(f, 1, m)
        store.set(f, 2, None)
    assert store.resident_nbytes <= 3 * one_chunk
    assert store.nbytes == sum(len(encode_rle(m)) for m in masks.values())
    spilled = [c for c in store.chunks() if not store.is_resident(c)]
    assert len(spilled) >= 4
    # Index queries answer without reloading.
    assert store.status(0, 1) == "present" and store.status(0, 2) == "absent"
    assert store.status(1, 1) == "none"
    assert store.frames(1) == sorted(masks)
    assert len(store) == 2 * len(masks)
    assert not store.is_resident(0)
    # Reading reloads, bit-exact; the bound still holds afterwards.
    for f, m in masks.items():
        np.testing.assert_array_equal(store.get(f, 1), m)
    assert store.resident_nbytes <= 3 * one_chunk


def test_spilled_chunks_stay_editable_and_dirty_tracked():
    shape = (20, 20)
    store = MaskStore(shape, memory_budget=1)
    full = np.ones(shape, bool)
    for c in range(4):
        store.set(c * CHUNK_FRAMES, 1, full)
    store.mark_clean("t", store.chunk_revisions())
    assert not store.is_resident(0)
    store.set(1, 1, full)  # a new frame in a spilled chunk
    store.remove_object(1)
    assert store.frames(1) == [] and len(store) == 0
    assert store.dirty_chunks("t") == [0, 1, 2, 3]
    assert store.chunks() == []


def test_spill_folder_is_removed_with_the_store():
    import gc

    store = MaskStore((10, 10), memory_budget=1)
    store.set(0, 1, np.ones((10, 10), bool))
    store.set(CHUNK_FRAMES, 1, np.ones((10, 10), bool))
    folder = store._spill_dir
    assert folder is not None and any(folder.iterdir())
    del store
    gc.collect()
    assert not folder.exists()


def test_spill_folder_of_a_killed_app_is_swept_by_the_next(monkeypatch, tmp_path):
    import subprocess
    import sys
    import tempfile

    from app.safety import atomic

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(atomic, "_last_sweep", {})
    stale = tmp_path / f".spill.masklet-tmp-{child.pid}-0badf00d"
    stale.mkdir()
    (stale / "0.bin").write_bytes(b"spilled masks of a dead process")
    foreign = tmp_path / "masklet-spill-abc"  # not our current naming: left alone
    foreign.mkdir()
    store = MaskStore((10, 10), memory_budget=1)
    store.set(0, 1, np.ones((10, 10), bool))
    store.set(CHUNK_FRAMES, 1, np.ones((10, 10), bool))
    assert store._spill_dir is not None and store._spill_dir.parent == tmp_path
    assert not stale.exists() and foreign.exists()


def test_store_refuses_sizes_over_the_limits():
    with pytest.raises(ValueError, match="over the limit"):
        MaskStore((60_000, 60_000))
    with pytest.raises(ValueError, match="num_frames must be in"):
        MaskStore((10, 10), num_frames=10**12)
