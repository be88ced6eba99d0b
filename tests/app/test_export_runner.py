"""Export runner: options validation, progress reports, cancellation and atomic outputs."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from export_fixtures import FakeReader, box_source

from app.export import ExportOptions, ObjectMeta, StoreSource, export
from app.project.mask_store import MaskStore

H, W, N = 16, 20, 5


@pytest.fixture
def source() -> StoreSource:
    return box_source((H, W), N, [ObjectMeta(1, "a", "thing"), ObjectMeta(2, "b", "thing")])


@pytest.mark.parametrize("fmt", ["png", "coco", "ytvis", "mp4"])
def test_progress_reports_every_frame(source, tmp_path, fmt):
    calls = []
    out = tmp_path / ("out" if fmt == "png" else f"out.{fmt}")
    result = export(
        source, fmt, out, ExportOptions(step=2), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert result.frames_done == 3 and not result.cancelled and out.exists()


@pytest.mark.parametrize("fmt", ["coco", "ytvis", "mp4"])
def test_cancel_leaves_old_file_untouched_and_no_temp(source, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(b"previous")
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 2

    result = export(source, fmt, out, should_stop=should_stop)
    assert result.cancelled and result.frames_done == 2 and result.paths == []
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_cancel_png_leaves_old_export_untouched_and_no_temp(source, tmp_path):
    out = tmp_path / "o"
    export(source, "png", out, ExportOptions(stop=1))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    done = [0]

    def progress(d: int, _total: int) -> None:
        done[0] = d

    result = export(source, "png", out, progress=progress, should_stop=lambda: done[0] >= 2)
    assert result.cancelled and result.frames_done == 2 and result.paths == []
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": 0}, "step must be >= 1"),
        ({"start": 3, "stop": 3}, "frame range 3:3 is empty"),
        ({"images": "gif"}, "images must be one of"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExportOptions(**kwargs)


def test_bad_requests(source, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tiff'"):
        export(source, "tiff", tmp_path / "x")
    with pytest.raises(ValueError, match=r"unknown object id\(s\) \[9\]"):
        export(source, "coco", tmp_path / "x.json", ExportOptions(object_ids=(1, 9)))
    with pytest.raises(ValueError, match="frame range ends at 9 but the video has 5 frames"):
        export(source, "coco", tmp_path / "x.json", ExportOptions(stop=9))
    with pytest.raises(ValueError, match="start frame 7 is past the end"):
        export(source, "coco", tmp_path / "x.json", ExportOptions(start=7))
    with pytest.raises(ValueError, match="is a folder"):
        export(source, "coco", tmp_path)
    assert not (tmp_path / "x.json").exists()


def test_store_source_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match=r"masks are \(8, 8\) but the video is \(16, 20\)"):
        StoreSource(name="v", reader=FakeReader((H, W), N), store=MaskStore((8, 8)), objects=[])


class WatchfulSource:
    """Hands out fresh masks and records whether masks of older frames are still alive."""

    name, num_frames, video_size, fps = "w", 12, (H, W), 5.0
    objects = [ObjectMeta(1, "a", "thing"), ObjectMeta(2, "b", "thing")]

    def __init__(self) -> None:
        self.handed_out: list[tuple[int, weakref.ref]] = []
        self.alive_old: list[int] = []

    def masks(self, frame: int) -> dict[int, np.ndarray]:
        old = [f for f, ref in self.handed_out if f < frame - 1 and ref() is not None]
        self.alive_old.extend(old)
        masks = {}
        for obj_id in (1, 2):
            mask = np.zeros((H, W), bool)
            mask[obj_id : obj_id + frame % 5 + 2, 3:9] = True
            self.handed_out.append((frame, weakref.ref(mask)))
            masks[obj_id] = mask
        return masks

    def image(self, frame: int) -> np.ndarray:
        return np.zeros((H, W, 3), np.uint8)


@pytest.mark.parametrize("fmt", ["png", "coco", "ytvis", "mp4"])
def test_exporters_hold_one_frame_of_masks_at_a_time(tmp_path, fmt):
    source = WatchfulSource()
    out = tmp_path / ("out" if fmt == "png" else f"out.{fmt}")
    assert export(source, fmt, out).frames_done == 12
    assert len(source.handed_out) == 24
    assert source.alive_old == []
