"""`masklet batch` with `find`: the masks of `masklet track --find` for the same phrases, the
same small finder file (loaded in Ray's worker processes from its weights) and the same pinned
threshold; and the manifest's `find` checked line by line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from find_fixtures import N, pinned_threshold, save_small_finder, write_clip
from PIL import Image

from app.headless.batch.ledger import BATCH_LOG
from app.headless.cli import main

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
MODEL = ["--checkpoint", "random:sam2.1-tiny", "--image-size", "128", "--precision", "exact"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    first = write_clip(folder / "street.mp4")
    second = folder / "yard.mp4"
    shutil.copy(first, second)
    return [first, second]


@pytest.fixture(scope="module")
def finder_file(tmp_path_factory) -> Path:
    # Bare detector.* keys this time (the CLI tests use the {"model": ...} form).
    return save_small_finder(tmp_path_factory.mktemp("finder") / "small.pt", wrapped=False)


def labels(folder: Path) -> list[np.ndarray]:
    return [np.array(Image.open(p)) for p in sorted((folder / "Annotations").glob("*.png"))]


def test_batch_find_gives_the_masks_of_track_find(local_ray, clips, finder_file, tmp_path):
    threshold = f"{pinned_threshold(finder_file, clips[0], 'dog', 2):.6f}"
    finder = ["--finder-checkpoint", str(finder_file), "--find-threshold", threshold]
    entries = [
        {"video": str(clips[0]), "find": ["dog"]},
        {"video": str(clips[1]), "find": ["dog", "cat"], "find_every": 4},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    out = tmp_path / "out"
    argv = ["batch", str(manifest), *MODEL, *finder, "--out", str(out), "--workers", "2"]
    assert main(argv) == 0
    records = {r["id"]: r for r in map(json.loads, (out / BATCH_LOG).read_text().splitlines())}
    assert records["street"]["found"] == ["found 2 on frame 0: dog 1, dog 2"]
    for entry, video in zip(entries, clips, strict=True):
        alone = tmp_path / f"track-{video.stem}"
        phrases = [a for phrase in entry["find"] for a in ("--find", phrase)]
        every = ["--find-every", "4"] if "find_every" in entry else []
        argv = ["track", str(video), *MODEL, *finder, *phrases, *every, "--format", "png"]
        assert main([*argv, "--out", str(alone)]) == 0
        batched, tracked = labels(out / video.stem), labels(alone)
        assert len(batched) == len(tracked) == N
        for a, b in zip(batched, tracked, strict=True):
            np.testing.assert_array_equal(a, b)
        assert any(a.any() for a in batched)  # something was found and tracked
        sidecar = (out / video.stem / "objects.json").read_text()
        assert json.loads(sidecar) == json.loads((alone / "objects.json").read_text())
        assert json.loads(sidecar)["categories"] == entry["find"]


def test_manifest_find_is_checked_line_by_line(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    lines = [
        {"video": "a.mp4", "find": "person"},
        {"video": "a.mp4", "find": ["person", 3]},
        {"video": "a.mp4", "find": []},
        {"video": "a.mp4", "find": [""]},
        {"video": "a.mp4", "find": ["per\u0000son"]},
        {"video": "a.mp4", "find": ["person"], "find_every": 0},
        {"video": "a.mp4", "find_every": 4, "prompts": "a.json"},
    ]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    assert main(["batch", str(manifest), *MODEL, "--out", str(out)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == len(lines)
    says = ["find: expected a list", "find: expected a list", "find: expected a list",
            "the phrase is empty", "control character (U+0000)", "find_every: expected",
            "find_every: needs 'find'"]  # fmt: skip
    for number, (line, text) in enumerate(zip(errors, says, strict=True), 1):
        assert line.startswith(f"masklet batch: error: m.jsonl line {number}: ") and text in line
    assert not out.exists()


def test_find_without_a_finder_checkpoint_is_refused_before_ray(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video": "a.mp4", "find": ["person"]}) + "\n")
    out = tmp_path / "out"
    assert main(["batch", str(manifest), *MODEL, "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "line 1 has 'find': give --finder-checkpoint" in error
    assert not out.exists()
