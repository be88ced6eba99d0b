"""Importers: each export format reads back to the same masks; bad files fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from app.export import ExportOptions, ObjectMeta, StoreSource, export
from app.export.rle import encode_mask
from app.imports import AnnotationImportError, ImportedObject, detect_format, import_annotations
from app.project.mask_store import MaskStore

H, W, N = 30, 40, 5


class FakeReader:
    fps = 8.0
    size = (H, W)

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> np.ndarray:
        return np.zeros((H, W, 3), np.uint8)


def donut(frame: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4:20, 4 + frame : 20 + frame] = True
    mask[8:14, 8 + frame : 14 + frame] = False
    return mask


def pieces(frame: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[22:H, 0:5] = True
    mask[24:27, 30 : 34 + frame] = True
    return mask


def truth(frame: int) -> dict[int, np.ndarray]:
    return {5: donut(frame), 9: pieces(frame)} if frame != 2 else {5: donut(frame)}


@pytest.fixture
def source() -> StoreSource:
    store = MaskStore((H, W))
    for f in range(N):
        for obj_id, mask in truth(f).items():
            store.set(f, obj_id, mask)
    objects = [ObjectMeta(5, "donut", "food"), ObjectMeta(9, "bits", "debris")]
    return StoreSource(name="clip", reader=FakeReader(), store=store, objects=objects)


def assert_same(imported, frames) -> None:
    assert imported.frames == list(frames)
    for frame, masks in imported:
        want = truth(frame)
        assert sorted(masks) == sorted(want)
        for obj_id, mask in masks.items():
            assert mask.dtype == bool
            np.testing.assert_array_equal(mask, want[obj_id])


@pytest.mark.parametrize(
    ("fmt", "target"), [("png", "out"), ("coco", "a.json"), ("ytvis", "b.json")]
)
def test_roundtrip_each_format(source, tmp_path, fmt, target):
    export(source, fmt, tmp_path / target, ExportOptions(step=1))
    imported = import_annotations(tmp_path / target, video_size=(H, W), num_frames=N)
    assert detect_format(tmp_path / target) == fmt
    assert imported.video_size == (H, W)
    assert imported.objects == [
        ImportedObject(5, "donut", "food"),
        ImportedObject(9, "bits", "debris"),
    ]
    assert_same(imported, range(N))
    assert imported.masks(99) == {}


def test_png_folder_without_objects_file_uses_indices(source, tmp_path):
    export(source, "png", tmp_path / "out")
    (tmp_path / "out" / "objects.json").unlink()
    imported = import_annotations(tmp_path / "out" / "Annotations")
    assert [o.obj_id for o in imported.objects] == [1, 2]
    np.testing.assert_array_equal(imported.masks(3)[2], pieces(3))


def test_range_export_imports_on_original_frames(source, tmp_path):
    export(source, "coco", tmp_path / "c.json", ExportOptions(start=1, step=2))
    assert_same(import_annotations(tmp_path / "c.json"), [1, 3])


def test_foreign_coco_with_list_counts_and_polygons(tmp_path):
    mask = donut(0)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    fortran = mask.astype(np.uint8).reshape(-1, order="F")
    edges = np.flatnonzero(np.diff(fortran)) + 1
    runs = np.diff(np.concatenate(([0], edges, [fortran.size]))).tolist()
    counts = runs if fortran[0] == 0 else [0, *runs]
    data = {
        "images": [{"id": 10, "file_name": "x/frame_0003.jpg", "height": H, "width": W}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 1,
                "segmentation": {"size": [H, W], "counts": counts},
            },
            {
                "id": 2,
                "image_id": 10,
                "category_id": 1,
                "segmentation": [[1, 1, 10, 1, 10, 10, 1, 10]],
            },
            {
                "id": 3,
                "image_id": 10,
                "category_id": 1,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
            },
        ],
    }
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    imported = import_annotations(path)
    assert imported.frames == [3]
    assert [o.name for o in imported.objects] == ["thing 1", "thing 2", "thing 3"]
    masks = imported.masks(3)
    np.testing.assert_array_equal(masks[1], mask)
    np.testing.assert_array_equal(masks[3], mask)
    assert 70 <= masks[2].sum() <= 110 and masks[2][5, 5]


def coco_with(segmentation, **image) -> dict:
    img = {"id": 1, "file_name": "00000.jpg", "height": H, "width": W} | image
    ann = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}
    return {"images": [img], "categories": [{"id": 1, "name": "c"}], "annotations": [ann]}


GOOD_RLE = encode_mask(donut(0)).rle


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json: is not valid JSON"),
        (json.dumps({"annotations": []}), "COCO file has no 'images' list"),
        (
            json.dumps(coco_with({"size": [H + 1, W], "counts": "0"})),
            r"bad.json: annotations\[0\].segmentation: RLE size",
        ),
        (json.dumps(coco_with({"size": [H, W], "counts": "05"})), "do not cover 30x40 pixels"),
        (json.dumps(coco_with({"size": [H, W], "counts": [5, 7]})), "do not cover 30x40 pixels"),
        (json.dumps(coco_with([[1, 2, 3, 4]])), "polygons need 3 or more"),
        (json.dumps(coco_with("oops")), "expected RLE or polygons"),
        (
            json.dumps(coco_with(GOOD_RLE, height="tall")),
            r"images\[0\].height must be a non-negative whole number, not 'tall'",
        ),
    ],
)
def test_malformed_coco(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AnnotationImportError, match=message) as info:
        import_annotations(path, fmt="coco")
    assert "\n" not in str(info.value)


def test_malformed_ytvis(source, tmp_path):
    export(source, "ytvis", tmp_path / "v.json")
    data = json.loads((tmp_path / "v.json").read_text())
    data["annotations"][0]["segmentations"].pop()
    (tmp_path / "short.json").write_text(json.dumps(data))
    with pytest.raises(
        AnnotationImportError, match=r"annotations\[0\].segmentations: expected a list of 5"
    ):
        import_annotations(tmp_path / "short.json")
    data["videos"].append(dict(data["videos"][0], id=2, name="other"))
    (tmp_path / "two.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationImportError, match="has 2 videos"):
        import_annotations(tmp_path / "two.json")
    with pytest.raises(AnnotationImportError, match="no video 'nope'"):
        import_annotations(tmp_path / "two.json", video="nope")
    assert import_annotations(tmp_path / "two.json", fmt="ytvis", video="other").objects == []


def test_mismatched_video_is_refused(source, tmp_path):
    export(source, "coco", tmp_path / "c.json")
    with pytest.raises(
        AnnotationImportError, match=r"annotations are 40x30 \(WxH\) but the video is 64x48"
    ):
        import_annotations(tmp_path / "c.json", video_size=(48, 64), num_frames=N)
    with pytest.raises(AnnotationImportError, match="reach frame 4 but the video has 3 frames"):
        import_annotations(tmp_path / "c.json", video_size=(H, W), num_frames=3)


def test_bad_png_folders(tmp_path):
    with pytest.raises(AnnotationImportError, match="holds no PNG files"):
        import_annotations(tmp_path)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "00000.png")
    with pytest.raises(AnnotationImportError, match="00000.png is a RGB image, not an indexed"):
        import_annotations(tmp_path)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "00000.png")
    Image.fromarray(np.ones((H, W + 2), np.uint8)).save(tmp_path / "00001.png")
    with pytest.raises(
        AnnotationImportError, match="00001.png is 42x30 .WxH., the other PNGs are 40x30"
    ):
        import_annotations(tmp_path)
    with pytest.raises(AnnotationImportError, match="does not exist"):
        import_annotations(tmp_path / "missing.json")


@pytest.mark.parametrize(("fmt", "target"), [("coco", "a.json"), ("ytvis", "b.json")])
def test_masks_decode_lazily_one_frame_at_a_time(source, tmp_path, monkeypatch, fmt, target):
    export(source, fmt, tmp_path / target)
    decoded = []
    real_decode = mask_utils.decode
    monkeypatch.setattr(mask_utils, "decode", lambda rles: decoded.append(1) or real_decode(rles))
    imported = import_annotations(tmp_path / target)
    assert decoded == []
    imported.masks(2)
    assert len(decoded) == len(truth(2))
