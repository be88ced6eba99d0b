"""Round trips of every export format on a small synthetic video with awkward masks."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.export import ExportOptions, ObjectMeta, StoreSource, davis_palette, export
from app.imports import import_annotations
from app.project.mask_store import MaskStore

H, W, N = 47, 63, 6  # odd on purpose: the MP4 writer must pad to even


class FakeReader:
    def __init__(self, frames: np.ndarray, fps: float = 10.0) -> None:
        self._frames = frames
        self.fps = fps
        self.size = frames.shape[1:3]

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._frames[i]


def ring(frame: int) -> np.ndarray:
    """A square with a hole, drifting right: tests that holes survive."""
    mask = np.zeros((H, W), bool)
    mask[5:25, 5 + frame : 25 + frame] = True
    mask[10:20, 10 + frame : 20 + frame] = False
    return mask


def two_parts(frame: int) -> np.ndarray:
    """Two separate blobs, one touching the image border."""
    mask = np.zeros((H, W), bool)
    mask[30:H, 0:8] = True
    mask[28:35, 40 + frame : 50 + frame] = True
    return mask


def overlapping(frame: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[15:40, 20:30] = True  # overlaps the ring
    return mask


OBJECTS = [
    ObjectMeta(7, "donut", "food"),
    ObjectMeta(3, "crumbs", "food"),
    ObjectMeta(12, "fork", "tool", color=(0, 200, 255)),
]


@pytest.fixture
def source() -> StoreSource:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    store = MaskStore((H, W), num_frames=N)
    for f in range(N):
        store.set(f, 7, ring(f))
        if f % 2 == 0:  # object 3 absent on odd frames
            store.set(f, 3, two_parts(f))
        else:
            store.set(f, 3, None, present=False)
        store.set(f, 12, overlapping(f))
    return StoreSource(name="clip", reader=FakeReader(frames), store=store, objects=OBJECTS)


def expected(frame: int) -> dict[int, np.ndarray]:
    masks = {7: ring(frame), 12: overlapping(frame)}
    if frame % 2 == 0:
        masks[3] = two_parts(frame)
    return masks


def test_palette_is_the_voc_bit_interleaving_palette():
    palette = davis_palette()
    assert palette.shape == (256, 3)
    assert palette[:9].tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
        [0, 0, 128],
        [128, 0, 128],
        [0, 128, 128],
        [128, 128, 128],
        [64, 0, 0],
    ]
    assert palette[255].tolist() == [224, 224, 192]


def test_png_roundtrip_ids_palette_and_overlap_rule(source, tmp_path):
    result = export(source, "png", tmp_path / "out", ExportOptions(binary_masks=True, images="png"))
    assert not result.cancelled and result.frames_done == N
    meta = json.loads((tmp_path / "out" / "objects.json").read_text())
    assert [(o["index"], o["id"]) for o in meta["objects"]] == [(1, 7), (2, 3), (3, 12)]
    for f in range(N):
        image = Image.open(tmp_path / "out" / "Annotations" / f"{f:05d}.png")
        assert image.mode == "P"
        assert np.array(image.getpalette()[:768], np.uint8).reshape(256, 3).tolist() == (
            davis_palette().tolist()
        )
        labels = np.array(image)
        want = np.zeros((H, W), np.uint8)
        for index, obj_id in [(1, 7), (2, 3), (3, 12)]:  # later object wins overlaps
            if obj_id in expected(f):
                want[expected(f)[obj_id]] = index
        np.testing.assert_array_equal(labels, want)
        binary = np.array(Image.open(tmp_path / "out" / "Objects" / "7" / f"{f:05d}.png"))
        np.testing.assert_array_equal(binary > 0, ring(f))
        frame_png = np.array(Image.open(tmp_path / "out" / "JPEGImages" / f"{f:05d}.png"))
        np.testing.assert_array_equal(frame_png, source.image(f))
    assert (labels == 3).sum() > 0 and ((labels == 1) & overlapping(N - 1)).sum() == 0


def test_coco_roundtrip_bit_exact(source, tmp_path):
    out = tmp_path / "coco.json"
    export(source, "coco", out, ExportOptions(images="jpg"))
    coco = COCO(str(out))
    images = {img["frame_index"]: img for img in coco.dataset["images"]}
    assert sorted(images) == list(range(N))
    assert images[2]["file_name"] == "clip/00002.jpg" and images[2]["width"] == W
    assert (tmp_path / "JPEGImages" / "clip" / "00002.jpg").is_file()
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    assert sorted(names.values()) == ["food", "tool"]
    seen = 0
    for ann in coco.dataset["annotations"]:
        frame = coco.imgs[ann["image_id"]]["frame_index"]
        want = expected(frame)[ann["track_id"]]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), want)
        assert ann["area"] == int(want.sum()) and ann["iscrowd"] == 0
        assert names[ann["category_id"]] == ("tool" if ann["track_id"] == 12 else "food")
        ys, xs = np.nonzero(want)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        seen += 1
    assert seen == sum(len(expected(f)) for f in range(N))


def test_coco_polygons_are_close_but_lossy(source, tmp_path):
    out = tmp_path / "poly.json"
    export(source, "coco", out, ExportOptions(polygons=True, object_ids=(3,)))
    coco = COCO(str(out))
    anns = coco.dataset["annotations"]
    assert len(anns) == 3 and all(isinstance(a["segmentation"], list) for a in anns)
    assert all(len(a["segmentation"]) == 2 for a in anns)  # both parts kept
    for ann in anns:
        want = expected(coco.imgs[ann["image_id"]]["frame_index"])[3]
        got = coco.annToMask(ann).astype(bool)
        iou = (got & want).sum() / (got | want).sum()
        assert iou > 0.7


def test_ytvis_roundtrip_with_range_step_and_objects(source, tmp_path):
    out = tmp_path / "vis.json"
    export(source, "ytvis", out, ExportOptions(start=1, stop=6, step=2, object_ids=(3, 7)))
    data = json.loads(out.read_text())
    (video,) = data["videos"]
    assert video["length"] == 3 and video["file_names"][0] == "clip/00001.jpg"
    assert video["frame_indices"] == [1, 3, 5]
    # object 3 is absent on every odd frame, so only object 7 has an annotation
    (ann,) = data["annotations"]
    assert ann["track_id"] == 7 and len(ann["segmentations"]) == 3
    for rle, bbox, area, frame in zip(
        ann["segmentations"], ann["bboxes"], ann["areas"], [1, 3, 5], strict=True
    ):
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), ring(frame))
        assert area == int(ring(frame).sum()) and len(bbox) == 4


def test_ytvis_nulls_where_absent(source, tmp_path):
    out = tmp_path / "vis.json"
    export(source, "ytvis", out)
    data = json.loads(out.read_text())
    by_track = {a["track_id"]: a for a in data["annotations"]}
    crumbs = by_track[3]
    assert [s is None for s in crumbs["segmentations"]] == [f % 2 == 1 for f in range(N)]
    assert crumbs["bboxes"][1] is None and crumbs["areas"][1] is None
    assert [c["name"] for c in data["categories"]] == ["food", "tool"]


def test_overlay_mp4_decodes_to_right_count_and_even_size(source, tmp_path):
    out = tmp_path / "overlay.mp4"
    export(source, "mp4", out)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.codec_context.name == "h264"
        assert abs(float(stream.average_rate) - 10.0) < 1e-6
    assert len(frames) == N
    assert frames[0].shape == (H + 1, W + 1, 3)
    # Inside the ring the fill tints towards the donut's palette red, channel R up vs G.
    inside = ring(0) & ~overlapping(0)
    picture = frames[0][:H, :W].astype(int)
    plain = source.image(0).astype(int)
    assert (picture[inside][:, 0] - picture[inside][:, 1]).mean() > (
        plain[inside][:, 0] - plain[inside][:, 1]
    ).mean() + 30


@pytest.fixture
def scored(source) -> StoreSource:
    """The source with predicted IoUs for the donut (object 7) on every frame but 0, where
    it stays unknown like a mask the user drew; the fork (12) has none at all."""
    quality = source._store.quality
    for f in range(1, N - 1):
        quality.set_confidence(f, 7, 0.5 + f / 10, 3.0)
    quality.set_confidence(N - 1, 7, 1.03, 3.0)  # the IoU head can overshoot: clipped
    quality.set_confidence(2, 3, 0.25, 1.0)
    return source


def test_coco_annotations_carry_the_predicted_iou_as_score(scored, tmp_path):
    out = tmp_path / "coco.json"
    export(scored, "coco", out)
    coco = COCO(str(out))
    got = {
        (coco.imgs[a["image_id"]]["frame_index"], a["track_id"]): a["score"]
        for a in coco.dataset["annotations"]
    }
    assert got[(3, 7)] == pytest.approx(0.8) and got[(5, 7)] == pytest.approx(1.0)
    assert got[(0, 7)] == 1.0  # unknown: a user's mask
    assert got[(2, 3)] == pytest.approx(0.25) and got[(4, 3)] == 1.0
    assert all(got[(f, 12)] == 1.0 for f in range(N))
    # The importer still reads what the exporter wrote.
    imported = import_annotations(out, video_size=(H, W), num_frames=N)
    np.testing.assert_array_equal(imported.masks(3)[7], ring(3))


def test_ytvis_tracks_carry_a_mean_score_and_per_frame_scores(scored, tmp_path):
    out = tmp_path / "vis.json"
    export(scored, "ytvis", out)
    data = json.loads(out.read_text())
    by_track = {a["track_id"]: a for a in data["annotations"]}
    donut, crumbs = by_track[7], by_track[3]
    assert donut["scores"] == pytest.approx([1.0, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert donut["score"] == pytest.approx(sum(donut["scores"]) / N, abs=1e-4)
    assert crumbs["scores"] == [1.0, None, 0.25, None, 1.0, None]
    assert crumbs["score"] == pytest.approx(0.75)
    imported = import_annotations(out, video_size=(H, W), num_frames=N)
    np.testing.assert_array_equal(imported.masks(2)[3], two_parts(2))
