"""Quality figures: RLE statistics, the drift rule, doubtful-frame search, persistence."""

import json
import math
import struct
import zlib

import numpy as np
import pytest

from app.project.files import ObjectInfo, Project, load_project, mask_folder, save_project
from app.project.mask_codec import encode_rle
from app.project.mask_store import MaskStore
from app.project.quality import (
    AREA,
    BLOCK,
    IOU,
    QualityTable,
    doubtful_any,
    drift_flags,
    next_doubtful,
    rle_stats,
)
from app.project.quality_file import QUALITY_FILE, decode_quality, encode_quality

SIZE = (24, 40)
FRAMES = 300


def _square(x: int, y: int, side: int = 6) -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    mask[y : y + side, x : x + side] = True
    return mask


# ---- statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_stats_match_the_decoded_mask(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((37, 53)) < 0.3
    mask[0, 0] = seed == 1  # runs starting with foreground and with background
    area, cx, cy = rle_stats(encode_rle(mask), 53)
    ys, xs = np.nonzero(mask)
    assert area == mask.sum()
    assert cx == pytest.approx(xs.mean(), rel=1e-12)
    assert cy == pytest.approx(ys.mean(), rel=1e-12)


def test_empty_mask_has_zero_area_and_no_centroid():
    area, cx, cy = rle_stats(encode_rle(np.zeros((4, 5), bool)), 5)
    assert area == 0 and math.isnan(cx) and math.isnan(cy)


def test_store_records_stats_and_resets_confidence_on_a_new_mask():
    store = MaskStore(SIZE, num_frames=FRAMES)
    store.set(3, 1, _square(10, 4))
    store.quality.set_confidence(3, 1, 0.8, 4.0)
    assert store.quality.get(3, 1) == pytest.approx((0.8, 4.0))
    assert store.quality.column(1, AREA, FRAMES)[3] == 36
    store.set_encoded(3, 1, encode_rle(_square(0, 0, 2)))  # e.g. an imported mask
    assert all(math.isnan(v) for v in store.quality.get(3, 1))
    assert store.quality.column(1, AREA, FRAMES)[3] == 4
    store.clear_frame(3, 1)
    assert math.isnan(store.quality.column(1, AREA, FRAMES)[3])
    store.set(4, 1, _square(1, 1))
    store.remove_object(1)
    assert store.quality.object_ids() == []


def test_store_copy_keeps_the_figures_and_is_independent():
    """An export reads a copy of the store; the copy must keep the predicted IoUs (a copy
    made entry by entry reset them, and every exported score became 1.0)."""
    store = MaskStore(SIZE, num_frames=FRAMES, memory_budget=1)  # spilled chunks too
    for frame in (3, 260):
        store.set(frame, 1, _square(10, 4))
        store.quality.set_confidence(frame, 1, 0.47 + frame / 1000, 2.0)
    store.set(5, 2, None, present=False)
    copy = store.copy()
    assert copy.quality.get(3, 1) == pytest.approx((0.473, 2.0))
    assert copy.quality.get(260, 1) == pytest.approx((0.73, 2.0))
    assert copy.status(5, 2) == "absent" and np.array_equal(copy.get(3, 1), _square(10, 4))
    store.quality.set_confidence(3, 1, 0.1, 0.0)
    store.clear_frame(260, 1)
    assert copy.quality.get(3, 1) == pytest.approx((0.473, 2.0))
    assert copy.status(260, 1) == "present"


# ---- drift --------------------------------------------------------------------------------------
def _track(n=100, speed=3.0, side=10.0):
    area = np.full(n, side * side)
    cx = np.arange(n) * speed
    cy = np.full(n, 50.0)
    return area, cx, cy


def test_steady_fast_motion_is_not_drift():
    area, cx, cy = _track(speed=8.0)  # most of an object size per frame
    assert not drift_flags(area, cx, cy).any()


def test_area_jump_and_centroid_jump_are_flagged():
    area, cx, cy = _track()
    area[40] *= 2.5
    area[60] /= 2.5
    cx[80] += 15  # 1.5 object sizes off the neighbours' median
    assert np.flatnonzero(drift_flags(area, cx, cy)).tolist() == [40, 60, 80]


def test_small_changes_and_lonely_frames_are_not_drift():
    area, cx, cy = _track()
    area[40] *= 1.8
    cx[50] += 8
    area[70:80] = np.nan  # a gap: frame 74 is alone in its window
    area[74] = 400.0
    assert not drift_flags(area, cx, cy).any()


def test_one_bad_neighbour_does_not_flag_its_neighbours():
    area, cx, cy = _track()
    area[40] = 1000.0
    flags = drift_flags(area, cx, cy)
    assert flags[40] and flags.sum() == 1


def test_drift_is_cached_until_the_object_changes():
    table = QualityTable()
    for f in range(20):
        table.record_mask(f, 1, (100.0, 2.0 * f, 5.0))
    first = table.drift(1, 20)
    assert table.drift(1, 20) is first
    table.record_mask(10, 1, (400.0, 20.0, 5.0))
    assert table.drift(1, 20) is not first and table.drift(1, 20)[10]


# ---- doubtful frames ----------------------------------------------------------------------------
def _table_with_ious(ious: dict[int, float], obj_id=1, n=50) -> QualityTable:
    table = QualityTable()
    for f in range(n):
        table.record_mask(f, obj_id, (100.0, 10.0, 10.0))
        table.set_confidence(f, obj_id, ious.get(f, 0.95), 3.0)
    return table


def test_low_iou_frames_are_doubtful_and_unknown_ones_are_not():
    table = _table_with_ious({5: 0.5, 30: 0.69})
    table.record_mask(7, 1, (100.0, 10.0, 10.0))  # user-made: IoU unknown
    table.record_mask(8, 1, (0.0, math.nan, math.nan))  # absent
    table.set_confidence(8, 1, 0.1, -4.0)
    assert np.flatnonzero(table.doubtful(1, 50, 0.7)).tolist() == [5, 30]
    assert np.flatnonzero(table.doubtful(1, 50, 0.6)).tolist() == [5]


def test_next_and_previous_doubtful_frame():
    flags = np.zeros(20, bool)
    flags[[3, 9, 15]] = True
    assert next_doubtful(flags, 3, 1) == 9
    assert next_doubtful(flags, 0, 1) == 3
    assert next_doubtful(flags, 15, 1) is None
    assert next_doubtful(flags, 9, -1) == 3
    assert next_doubtful(flags, 3, -1) is None


def test_any_object_joins_the_objects_flags():
    table = _table_with_ious({5: 0.5})
    for f in range(50):
        table.record_mask(f, 2, (100.0, 10.0, 10.0))
        table.set_confidence(f, 2, 0.2 if f == 12 else 0.9, 3.0)
    flags = doubtful_any(table, [1, 2], 50, 0.7)
    assert np.flatnonzero(flags).tolist() == [5, 12]


# ---- persistence --------------------------------------------------------------------------------
def _project(tmp_path, ids=(1, 2)):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"fake")
    objects = [ObjectInfo(i, f"o{i}", "thing", (255, 0, 0)) for i in ids]
    return Project(str(video), objects, [], {}, FRAMES, SIZE)


def _store():
    store = MaskStore(SIZE, num_frames=FRAMES)
    for f in (0, 1, 2, 260):
        store.set(f, 1, _square(f % 30, 2))
        store.quality.set_confidence(f, 1, 0.5 + f / 1000, 2.5)
    store.set(3, 1, None)
    store.quality.set_confidence(3, 1, 0.3, -6.0)
    store.set(5, 2, _square(1, 1))  # a user-made mask: no figures
    return store


def test_figures_survive_a_project_round_trip(tmp_path):
    path = tmp_path / "p.masklet"
    save_project(path, _project(tmp_path), _store())
    _, loaded = load_project(path)
    q = loaded.quality
    assert q.get(260, 1) == pytest.approx((0.76, 2.5))
    assert q.get(3, 1) == pytest.approx((0.3, -6.0))
    assert all(math.isnan(v) for v in q.get(5, 2))
    # Areas and centroids come back from the masks themselves.
    assert q.column(1, AREA, FRAMES)[2] == 36 and q.column(1, AREA, FRAMES)[3] == 0


def test_unchanged_figures_are_not_rewritten_by_an_incremental_save(tmp_path):
    path = tmp_path / "p.masklet"
    store = _store()
    save_project(path, _project(tmp_path), store)
    quality = mask_folder(path) / QUALITY_FILE
    quality.write_bytes(b"sentinel")
    save_project(path, _project(tmp_path), store, only_dirty=True)
    assert quality.read_bytes() == b"sentinel"
    store.quality.set_confidence(1, 1, 0.1, 1.0)
    save_project(path, _project(tmp_path), store, only_dirty=True)
    assert load_project(path)[1].quality.get(1, 1) == pytest.approx((0.1, 1.0))


def test_project_without_figures_loads_with_them_unknown(tmp_path):
    path = tmp_path / "p.masklet"
    save_project(path, _project(tmp_path), _store())
    doc = json.loads(path.read_text())
    del doc["masks"]["quality"]  # as written before quality files existed
    path.write_text(json.dumps(doc))
    (mask_folder(path) / QUALITY_FILE).unlink()
    project, loaded = load_project(path)
    assert len(project.objects) == 2 and loaded.status(260, 1) == "present"
    assert all(math.isnan(v) for v in loaded.quality.get(260, 1))
    assert not loaded.quality.doubtful(1, FRAMES, 0.7).any()


@pytest.mark.parametrize("damage", ["garbage", "crc", "count", "empty"])
def test_damaged_quality_file_leaves_figures_unknown(tmp_path, damage):
    path = tmp_path / "p.masklet"
    save_project(path, _project(tmp_path), _store())
    quality = mask_folder(path) / QUALITY_FILE
    blob = bytearray(quality.read_bytes())
    if damage == "garbage":
        blob = bytearray(b"\x00" * 64)
    elif damage == "crc":
        blob[20] ^= 0xFF
    elif damage == "count":
        struct.pack_into("<I", blob, 12, 10**9)
        blob[-4:] = struct.pack("<I", zlib.crc32(bytes(blob[:-4])))
    else:
        blob = bytearray()
    quality.write_bytes(bytes(blob))
    _, loaded = load_project(path)
    assert loaded.status(260, 1) == "present"
    assert all(math.isnan(v) for v in loaded.quality.get(260, 1))


def test_hostile_values_and_foreign_entries_are_dropped():
    table = QualityTable()
    for f, iou, score in ((0, 0.9, 1.0), (1, 55.0, 1.0), (2, 0.5, 1e30)):
        table.set_confidence(f, 1, iou, score)
    table.set_confidence(0, 9, 0.9, 1.0)  # an object the project does not know
    table.set_confidence(BLOCK * 5, 1, 0.9, 1.0)  # a block past the video's end
    entries = decode_quality(encode_quality(table), {1}, BLOCK * 2)
    assert [(o, b) for o, b, _ in entries] == [(1, 0)]
    rows = entries[0][2]
    assert rows[0].tolist() == pytest.approx([0.9, 1.0])
    assert math.isnan(rows[1, 0]) and rows[1, 1] == 1.0
    assert rows[2, 0] == pytest.approx(0.5) and math.isnan(rows[2, 1])


def test_quality_file_is_bounded_by_what_the_project_can_hold(tmp_path):
    path = tmp_path / "p.masklet"
    save_project(path, _project(tmp_path), _store())
    quality = mask_folder(path) / QUALITY_FILE
    # Far more entries than 2 objects x 2 blocks could need: refused by size, unread.
    with quality.open("ab") as f:
        f.write(b"\x00" * (BLOCK * 8 * 40))
    _, loaded = load_project(path)
    assert all(math.isnan(v) for v in loaded.quality.get(0, 1))


def test_iou_column_is_dense_with_nan_for_unknown():
    table = _table_with_ious({}, n=3)
    col = table.column(1, IOU, 10)
    assert col.dtype == np.float32 and col.shape == (10,)
    assert np.isnan(col[3:]).all() and col[:3] == pytest.approx([0.95] * 3)


def test_a_switch_to_another_object_flags_the_frames_around_it():
    area, cx, cy = _track(speed=0.0)
    cx[50:] += 40  # four object sizes away, and it stays there
    flagged = set(np.flatnonzero(drift_flags(area, cx, cy)).tolist())
    assert {49, 50} <= flagged <= set(range(47, 53))


def test_file_goes_when_the_figures_go_and_a_strangers_file_stays(tmp_path):
    path = tmp_path / "p.masklet"
    store = _store()
    save_project(path, _project(tmp_path), store)
    quality = mask_folder(path) / QUALITY_FILE
    assert quality.is_file() and json.loads(path.read_text())["masks"]["quality"] == QUALITY_FILE
    store.remove_object(1)
    save_project(path, _project(tmp_path), store, only_dirty=True)
    assert not quality.exists() and "quality" not in json.loads(path.read_text())["masks"]
    quality.write_bytes(b"not ours")
    save_project(path, _project(tmp_path), store, only_dirty=True)
    assert quality.read_bytes() == b"not ours"


def test_autosave_recovery_keeps_the_figures(tmp_path):
    from app.project.autosave import Autosaver

    project, store = _project(tmp_path), _store()
    saver = Autosaver(root=tmp_path / "recovery")
    saver.attach(lambda: (project, store))
    assert saver.flush()
    _, recovered = load_project(saver.session_dir / "recovery.masklet")
    assert recovered.quality.get(1, 1) == pytest.approx((0.501, 2.5))
    saver.clean_shutdown()
