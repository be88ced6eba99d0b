"""`masklet track --find`: found objects named, categorised and scored in every format, an
object entering mid-clip keyed where it was found, counts pinned by thresholds on a small
random-init finder loaded from its file, and one line for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from find_fixtures import ENTERS, ColourFinder, N, pinned_threshold, save_small_finder, write_clip
from PIL import Image

import app.headless.cli as cli
from app.headless.cli import main

MODEL = ["--checkpoint", "random:sam2.1-tiny", "--image-size", "128", "--precision", "exact"]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def finder_file(tmp_path_factory) -> Path:
    return save_small_finder(tmp_path_factory.mktemp("finder") / "small.pt")


@pytest.fixture
def colour_finder(monkeypatch) -> ColourFinder:
    """The finder the CLI loads, replaced by one that finds colours (the file is still checked)."""
    finder = ColourFinder()
    monkeypatch.setattr(cli, "_load_finder_noted", lambda find, device: finder)
    return finder


def track(video: Path, out: Path, fmt: str, *extra: str) -> int:
    return main(["track", str(video), *MODEL, "--format", fmt, "--out", str(out), *extra])


def annotations_by_name(coco: dict) -> dict[str, list[dict]]:
    frames = {image["id"]: image["frame_index"] for image in coco["images"]}
    out: dict[str, list[dict]] = {}
    for ann in coco["annotations"]:
        out.setdefault(ann["name"], []).append({**ann, "frame": frames[ann["image_id"]]})
    return out


@pytest.mark.parametrize("objects", [2, 0])
def test_pinned_threshold_counts_names_categories_and_scores(objects, video, finder_file,
                                                             tmp_path, capsys):  # fmt: skip
    threshold = pinned_threshold(finder_file, video, "dog", objects) if objects else 0.99
    out = tmp_path / "masks.json"
    finder = ["--finder-checkpoint", str(finder_file), "--find-threshold", f"{threshold:.6f}"]
    assert track(video, out, "coco", "--find", "dog", *finder) == 0
    err = capsys.readouterr().err
    coco = json.loads(out.read_text())
    assert [c["name"] for c in coco["categories"]] == ["dog"]
    found = annotations_by_name(coco)
    if not objects:
        assert found == {} and "found nothing on the 1 frame(s) searched" in err
        return
    assert "found 2 on frame 0: dog 1, dog 2" in err
    assert set(found) <= {"dog 1", "dog 2"} and found  # a mask may be absent on every frame
    for anns in found.values():
        assert min(a["frame"] for a in anns) == 0  # keyed on the first frame
        finder_scores = {a["finder_score"] for a in anns}
        assert len(finder_scores) == 1 and threshold - 1e-4 <= finder_scores.pop() <= 1.0
        assert all(0.0 <= a["score"] <= 1.0 and a["category_id"] == 1 for a in anns)


def test_an_object_entering_mid_clip_is_keyed_where_it_was_found(video, tmp_path, colour_finder,
                                                                   finder_file):  # fmt: skip
    out = tmp_path / "masks.json"
    args = ["--find", "red", "--find", "green", "--find-every", "4"]
    assert track(video, out, "coco", *args, "--finder-checkpoint", str(finder_file)) == 0
    found = annotations_by_name(json.loads(out.read_text()))
    # Searched on frames 0 and 4 only; green enters on frame 3 and is found on frame 4.
    assert sorted({key[1] for key, _, _ in colour_finder.calls}) == [0, 4]
    assert "green 1" in found and "green 2" not in found
    assert min(a["frame"] for a in found["green 1"]) == 4 > ENTERS
    assert min(a["frame"] for a in found["red 1"]) == 0
    assert {a["finder_score"] for a in found["green 1"]} == {0.8}
    assert {precision for _, _, precision in colour_finder.calls} == {"exact"}


def test_found_with_prompts_png_sidecar_and_fast_precision(video, tmp_path, colour_finder,
                                                           finder_file):  # fmt: skip
    prompts = tmp_path / "prompts.json"
    square = {"id": 1, "name": "square", "category": "shape",
              "prompts": [{"frame": 0, "points": [[25, 25, 1]]}]}  # fmt: skip
    prompts.write_text(json.dumps({"objects": [square]}))
    out = tmp_path / "png"
    extra = ["--prompts", str(prompts), "--find", "green", "--finder-checkpoint", str(finder_file)]
    assert track(video, out, "png", *extra, "--precision", "fast") == 0
    sidecar = json.loads((out / "objects.json").read_text())
    assert sidecar["categories"] == ["green", "shape"]
    entries = {e["name"]: e for e in sidecar["objects"]}
    assert entries["square"]["id"] == 1 and "finder_score" not in entries["square"]
    # Green is not in view on frame 0 and nothing searches again: no green object.
    assert set(entries) == {"square"}
    assert {precision for _, _, precision in colour_finder.calls} == {"fast"}
    labels = [np.array(Image.open(p)) for p in sorted((out / "Annotations").glob("*.png"))]
    assert len(labels) == N


def test_png_sidecar_keeps_the_finder_score(video, tmp_path, colour_finder, finder_file):
    extra = ["--find", "green", "--find-every", "4", "--finder-checkpoint", str(finder_file)]
    for run in ("first", "second"):
        out = tmp_path / run
        assert track(video, out, "png", *extra) == 0
        entries = json.loads((out / "objects.json").read_text())["objects"]
        assert [(e["name"], e["category"], e["finder_score"]) for e in entries] == [
            ("green 1", "green", 0.8)
        ]
    # One finder for both runs, as a batch worker's: each run names its frames in the
    # finder's feature cache apart, so frame 0 of one video is never the other's.
    keys = [key for key, _, _ in colour_finder.calls]
    assert len({key for key in keys if key[1] == 0}) == 2


def test_a_long_phrase_is_read_to_32_tokens_and_rtl_text_is_found(video, finder_file,
                                                                   tmp_path, capsys):  # fmt: skip
    out = tmp_path / "masks.json"
    long_phrase = " ".join(["a"] * 40)  # 40 tokens in 79 characters
    hebrew = "אופניים"  # "bicycle"
    extra = ["--find", long_phrase, "--find", hebrew, "--finder-checkpoint", str(finder_file)]
    assert track(video, out, "coco", *extra, "--frames", "0:2", "--find-threshold", "0.2") == 0
    err = capsys.readouterr().err
    assert "longer than the finder's 32 tokens" in err and err.count("32 tokens") == 1
    coco = json.loads(out.read_text())
    assert [c["name"] for c in coco["categories"]] == [long_phrase, hebrew]


def sam2_file(tmp_path: Path) -> Path:
    path = tmp_path / "sam2.pt"
    key = "image_encoder.trunk.patch_embed.proj.weight"
    torch.save({"model": {key: torch.zeros(2, 3, 7, 7)}}, path)
    return path


BAD_OPTIONS = [
    (["--find", ""], "the phrase is empty"),
    (["--find", "x" * 100_000], "at most 100"),
    (["--find", "per\x07son"], "control character (U+0007)"),
    (["--find", "\u202eperson"], "text-direction) character (U+202E)"),
    (["--find", "zero\u200bwidth"], "format (invisible"),
    (["--find", "person", "--find-every", "0"], "--find-every"),
    (["--find", "person", "--find-every", "-4"], "--find-every"),
    (["--find", "person", "--find-threshold", "1.01"], "[0, 1]"),
    (["--find", "person", "--find-threshold", "-0.1"], "[0, 1]"),
    (["--find", "person", "--find-threshold", "nan"], "[0, 1]"),
    ([], "--prompts P.json, --find PHRASE"),
    (["--find-every", "4", "--prompts", "p.json"], "--find-every needs --find"),
]


@pytest.mark.parametrize(("extra", "says"), BAD_OPTIONS)
def test_bad_find_options_exit_2_with_one_line(extra, says, video, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_load_model", lambda *a: pytest.fail("the model must not load"))
    out = tmp_path / "masks.json"
    assert track(video, out, "coco", *extra, "--finder-checkpoint", "sam3.pt") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert not out.exists()


def test_bad_finder_files_exit_1_with_one_line(video, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_load_model", lambda *a: pytest.fail("the tracker must not load"))
    out = tmp_path / "masks.json"
    cases = [
        ([], "give --finder-checkpoint"),
        (["--finder-checkpoint", str(tmp_path / "none.pt")], "not found"),
        (["--finder-checkpoint", str(sam2_file(tmp_path))], "SAM 2 checkpoint"),
    ]
    for extra, says in cases:
        assert track(video, out, "coco", "--find", "person", *extra) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], lines
        assert not out.exists()
