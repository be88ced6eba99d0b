"""Hostile annotation files and image folders: one clear line, no crash, hang or memory bomb.

Cases that crashed (pycocotools segfaults), hung (FIFOs) or allocated gigabytes before the
checks run in a capped child process (tests/hostile.py) and assert one refusal line and
that the user's files are untouched; cheap ones run in-process.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile import PLAIN_CAP, assert_refused, digest_tree, run_python
from PIL import Image
from pycocotools import mask as mask_utils

from app.imports import AnnotationImportError, import_annotations
from app.imports.segmentation import decode_segmentation
from app.safety.limits import MAX_FRAMES
from app.video.errors import VideoError
from app.video.images import load_image

H, W = 30, 40
TIMEOUT = 60

IMPORT_ALL = """
import sys
from app.imports import AnnotationImportError, import_annotations
try:
    imported = import_annotations({path!r}{extra})
    for frame in imported.frames:
        for _obj, _mask in imported.iter_masks(frame):
            pass
except AnnotationImportError as exc:
    sys.exit(f"import: {{exc}}")
print("imported", len(imported.objects))
"""


def import_in_child(path: Path, extra: str = "") -> str:
    """Import `path` and decode every mask in a capped child; the one refusal line."""
    before = digest_tree(path)
    outcome = run_python(
        IMPORT_ALL.format(path=str(path), extra=extra), mem_bytes=PLAIN_CAP, timeout=TIMEOUT
    )
    line = assert_refused(outcome, code=1, says=f"import: {path.name}: ")
    assert digest_tree(path) == before
    return line


def coco(segmentation=None, *, image=None, annotation=None) -> dict:
    img = {"id": 1, "file_name": "00000.jpg", "height": H, "width": W} | (image or {})
    ann = {"id": 1, "image_id": 1, "category_id": 1, "track_id": 7}
    ann["segmentation"] = segmentation or [[1, 1, 10, 1, 10, 10]]
    ann |= annotation or {}
    return {"images": [img], "categories": [{"id": 1, "name": "c"}], "annotations": [ann]}


def ytvis(*, video=None, annotation=None) -> dict:
    entry = {"id": 1, "height": H, "width": W, "file_names": ["v/00000.jpg", "v/00001.jpg"]}
    ann = {"id": 1, "video_id": 1, "category_id": 1, "segmentations": [None, [[1, 1, 9, 1, 9, 9]]]}
    return {
        "videos": [entry | (video or {})],
        "categories": [{"id": 1, "name": "c"}],
        "annotations": [ann | (annotation or {})],
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def write_bomb_png(path: Path, width: int, height: int, *, palette: bool) -> Path:
    """A real 1-bit PNG of width x height blank pixels, streamed row by row: the file is
    ~100 KB and writing it never holds more than one row."""
    header = struct.pack(">IIBBBBB", width, height, 1, 3 if palette else 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte "none", then zero bits
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    chunks = [_chunk(b"IHDR", header)]
    if palette:
        chunks.append(_chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0])))
    chunks += [_chunk(b"IDAT", idat), _chunk(b"IEND", b"")]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))
    return path


def write_labels(path: Path, labels: np.ndarray) -> Path:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.save(path)
    return path


# ---- class 1: coordinates and RLE runs that crashed or exhausted pycocotools ----------


@pytest.mark.parametrize(
    ("coordinate", "says"),
    [
        ("2e9", "coordinate 2000000000.0 lies far outside the 40x30 frame"),
        ("1e308", "coordinate 1e+308 lies far outside"),
        ("-1e308", "coordinate -1e+308 lies far outside"),
        ("NaN", "NaN is not a valid JSON number"),
    ],
)
def test_hostile_polygon_coordinates_are_refused_in_a_capped_child(tmp_path, coordinate, says):
    text = json.dumps(coco([[1, 1, 5, 1, 10, 10]])).replace("[1, 1, 5,", f"[1, 1, {coordinate},")
    path = tmp_path / "labels.json"
    path.write_text(text)
    line = import_in_child(path)
    assert says in line
    if coordinate != "NaN":
        assert "annotations[0].segmentation[0][2]" in line


def test_zigzag_polygon_in_the_frame_is_refused_before_rasterising(tmp_path):
    zigzag = [0, 0, W, H] * 50_000  # in the frame, but 5 million pixels of outline
    line = import_in_child(write_json(tmp_path / "zigzag.json", coco([zigzag])))
    assert "polygons are" in line and "over the limit" in line


@pytest.mark.parametrize(
    ("counts", "says"),
    [
        # Sums to H*W modulo 2**64: each run would overrun the mask buffer in C.
        ([2**62, 2**62, 2**62, 2**62 + H * W], "do not cover 30x40 pixels"),
        ([2**64 - 1, H * W + 1], "out of range"),
        ([-5, H * W + 5], "do not cover"),
        ([H * W, 0.5], "must hold whole numbers"),
    ],
)
def test_rle_runs_that_overrun_the_mask_are_refused(tmp_path, counts, says):
    segmentation = {"size": [H, W], "counts": counts}
    line = import_in_child(write_json(tmp_path / "runs.json", coco(segmentation)))
    assert "annotations[0].segmentation: RLE counts" in line and says in line


def test_rle_on_a_huge_declared_image_is_refused_before_decoding(tmp_path):
    side = 100_000  # one run covering 10 G pixels: a 30-byte segmentation
    segmentation = {"size": [side, side], "counts": [side * side]}
    data = coco(segmentation, image={"height": side, "width": side})
    line = import_in_child(write_json(tmp_path / "huge.json", data))
    assert "images[0]: size 100000x100000 (WxH) has a side over the limit" in line


def coco_polygon(polygon: list[float]) -> np.ndarray:
    """pycocotools' own rasterisation of a polygon, the oracle."""
    rle = mask_utils.merge(mask_utils.frPyObjects([polygon], H, W))
    return mask_utils.decode(rle).astype(bool)


def near_edge(mask: np.ndarray) -> np.ndarray:
    """Pixels on either side of a boundary of `mask`."""
    edge = np.zeros_like(mask)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[1:] != mask[:-1]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, 1:] != mask[:, :-1]
    return edge


def test_polygon_clipping_keeps_pycocotools_rasterisation():
    rng = np.random.default_rng(0)
    for _ in range(100):  # inside the frame nothing is clipped: exactly the oracle
        inside = rng.uniform(0, [W, H], (6, 2)).ravel().tolist()
        np.testing.assert_array_equal(
            decode_segmentation([inside], (H, W), "p"), coco_polygon(inside)
        )
    moved = 0
    for _ in range(100):
        across = rng.uniform([-W, -H], [2 * W, 2 * H], (3, 2)).ravel().tolist()
        reference = coco_polygon(across)
        differ = decode_segmentation([across], (H, W), "p") ^ reference
        # A clipped edge keeps its line; only rounding along it may move a boundary pixel.
        assert not (differ & ~near_edge(reference)).any()
        moved += int(differ.sum())
    assert moved < 0.01 * 100 * H * W


def test_non_canonical_rle_string_decodes_to_the_runs_it_spells():
    # One run of H*W spelled in 8 characters (zero continuation digits): pycocotools' own
    # parser would shift a 32-bit int by 35 bits; our runs reach it as a validated list.
    digits = [(H * W >> 5 * k) & 0x1F for k in range(8)]
    assert digits[3:] == [0] * 5
    spelled = "".join(chr(48 + d + (0x20 if k < 7 else 0)) for k, d in enumerate(digits))
    zeros = decode_segmentation({"size": [H, W], "counts": spelled}, (H, W), "s")
    assert zeros.shape == (H, W) and not zeros.any()
    ones = decode_segmentation({"size": [H, W], "counts": "0" + spelled}, (H, W), "s")
    assert ones.all()


# ---- class 2: frame numbers that are not plain non-negative ints in range --------------


@pytest.mark.parametrize("frame", [-3, True, 2.0, MAX_FRAMES, 10**19, "4", None])
def test_bad_coco_frame_index_is_refused(tmp_path, frame):
    path = write_json(tmp_path / "frames.json", coco(image={"frame_index": frame}))
    with pytest.raises(
        AnnotationImportError, match=r"^frames.json: images\[0\].frame_index must be a frame"
    ):
        import_annotations(path)


@pytest.mark.parametrize("frame", [-5, False, 1.5, 10**19])
def test_bad_ytvis_frame_indices_are_refused(tmp_path, frame):
    path = write_json(tmp_path / "v.json", ytvis(video={"frame_indices": [0, frame]}))
    with pytest.raises(
        AnnotationImportError, match=r"^v.json: videos\[0\].frame_indices\[1\] must be a frame"
    ):
        import_annotations(path)


def test_frame_numbers_from_huge_file_name_digits_fall_back_to_positions(tmp_path):
    names = ["v/" + "9" * 5000 + ".jpg", "v/20230101123456.jpg"]
    imported = import_annotations(
        write_json(tmp_path / "v.json", ytvis(video={"file_names": names}))
    )
    assert imported.frames == [0, 1]


# ---- class 3: every failure is an AnnotationImportError naming the file and the place --


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (coco(image={"height": 1e300}), r"images\[0\].height must be a non-negative whole"),
        (coco(annotation={"image_id": [1]}), r"annotations\[0\].image_id must be"),
        (coco(annotation={"track_id": "abc"}), r"annotations\[0\].track_id must be .*'abc'"),
        (coco(annotation={"track_id": 1e300}), r"annotations\[0\].track_id must be"),
        (coco(annotation={"category_id": {"a": 1}}), r"annotations\[0\].category_id must be"),
        (
            coco(annotation={"segmentation": {"size": [H, W], "counts": "é"}}),
            r"annotations\[0\].segmentation: RLE counts are not a COCO RLE",
        ),
        ({**coco(), "images": [[1, 2]]}, r"images\[0\] must be a JSON object"),
        ({**coco(), "categories": [{"id": [1], "name": "x"}]}, r"categories\[0\]: categories"),
        (ytvis(annotation={"track_id": "abc"}), r"annotations\[0\].track_id must be .*'abc'"),
        (ytvis(video={"height": float("1e300")}), r"videos\[0\].height must be"),
        (ytvis(video={"frame_indices": 3}), r"videos\[0\].frame_indices must list one frame"),
        ({"videos": [1, 2]}, r"videos\[0\] must be a JSON object"),
    ],
)
def test_wrong_types_are_one_line_import_errors(tmp_path, data, says):
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(AnnotationImportError, match="^bad.json: " + says) as info:
        import_annotations(path)
    assert "\n" not in str(info.value)


def test_more_objects_than_the_limit_are_refused(tmp_path, monkeypatch):
    import app.imports.common as common

    monkeypatch.setattr(common, "MAX_OBJECTS", 50)
    data = coco()
    data["annotations"] = [dict(data["annotations"][0], track_id=i) for i in range(51)]
    with pytest.raises(AnnotationImportError, match="^many.json: holds 51 objects, over the limit"):
        import_annotations(write_json(tmp_path / "many.json", data))
    data["annotations"].pop()
    assert len(import_annotations(write_json(tmp_path / "many.json", data)).objects) == 50


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"images": [{"id": 1, "height": Infinity}]}', "Infinity is not a valid JSON number"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
        ('{"images": [{"id": ' + "9" * 30 + "}]}", "an integer of 30 digits is too large"),
    ],
)
def test_json_that_python_would_choke_on_is_refused(tmp_path, text, says):
    path = tmp_path / "odd.json"
    path.write_text(text)
    with pytest.raises(AnnotationImportError, match=f"^odd.json: is not valid JSON: {says}"):
        import_annotations(path)


def test_fifo_as_annotation_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "labels.json")
    line = import_in_child(tmp_path / "labels.json")
    assert "is not a regular file" in line


# ---- class 4: image bombs in DAVIS folders and image folders ---------------------------


@pytest.mark.parametrize(
    ("side", "says"),
    [(20_000, "size is over the limit"), (10_000, "size 10000x10000 (WxH) is over the limit")],
)
def test_davis_folder_with_a_palette_png_bomb_is_refused(tmp_path, side, says):
    folder = tmp_path / "davis"
    folder.mkdir()
    write_labels(folder / "00000.png", np.ones((H, W)))
    write_bomb_png(folder / "00001.png", side, side, palette=True)
    assert (folder / "00001.png").stat().st_size < 200_000
    line = import_in_child(folder)
    assert "00001.png" in line and says in line


def test_davis_png_of_another_size_than_the_video_is_refused_before_decoding(tmp_path):
    folder = tmp_path / "davis"
    folder.mkdir()
    write_bomb_png(folder / "00000.png", 8000, 8000, palette=True)  # within the limits
    line = import_in_child(folder, extra=", video_size=(30, 40), num_frames=5")
    assert "00000.png is 8000x8000 (WxH), the video is 40x30" in line


def test_davis_folder_with_a_fifo_png_is_refused_without_blocking(tmp_path):
    folder = tmp_path / "davis"
    folder.mkdir()
    write_labels(folder / "00000.png", np.ones((H, W)))
    os.mkfifo(folder / "00001.png")
    line = import_in_child(folder)
    assert "cannot read 00001.png: is not a regular file" in line


OPEN_FOLDER = """
import sys
from app.video import VideoError, open_video
try:
    reader = open_video({path!r})
    for i in range(len(reader)):
        reader[i]
except VideoError as exc:
    sys.exit(str(exc))
print("opened", len(reader))
"""


@pytest.mark.parametrize("position", ["first", "later"])
def test_image_folder_png_bomb_is_refused_before_decoding(tmp_path, position):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "frame1.png")
    bomb = folder / ("frame0.png" if position == "first" else "frame2.png")
    write_bomb_png(bomb, 30_000, 30_000, palette=False)
    assert bomb.stat().st_size < 200_000
    before = digest_tree(folder)
    outcome = run_python(OPEN_FOLDER.format(path=str(folder)), mem_bytes=PLAIN_CAP, timeout=TIMEOUT)
    line = assert_refused(outcome, code=1, says=str(bomb))
    assert "over the limit of 67 megapixels per frame" in line
    assert digest_tree(folder) == before


def test_image_frame_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "frame1.png"
    os.mkfifo(fifo)
    code = f"""
import sys
from pathlib import Path
from app.video.errors import VideoError
from app.video.images import load_image
try:
    load_image(Path({str(fifo)!r}))
except VideoError as exc:
    sys.exit(str(exc))
"""
    outcome = run_python(code, mem_bytes=PLAIN_CAP, timeout=TIMEOUT)
    assert_refused(outcome, code=1, says="frame1.png: is not a regular file")


def test_image_frame_of_another_format_is_refused(tmp_path):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "frame1.png", format="BMP")
    with pytest.raises(VideoError, match="frame1.png: not a readable JPEG or PNG"):
        load_image(tmp_path / "frame1.png")


def test_image_frame_of_another_size_is_refused_before_decoding(tmp_path):
    write_bomb_png(tmp_path / "frame1.png", 8000, 8000, palette=False)
    with pytest.raises(VideoError, match=r"is 8000x8000, unlike the first image \(40x30\)"):
        load_image(tmp_path / "frame1.png", (H, W))
