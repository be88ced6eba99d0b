"""`masklet batch` on a local Ray (one per module, 2 CPUs): parity with `masklet track`, bad
videos, a killed worker, an interrupted and resumed batch; and the manifest checks.

A random-init SAM 2.1 tiny at 128 px on 128x96 clips of 4-9 frames keeps the module near a
minute on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_refused, digest_tree, run_cli
from PIL import Image
from video_fixtures import write_video

from app.headless.batch.ledger import BATCH_LOG, FAILURES_LOG, sha256_file
from app.headless.batch.manifest import ManifestError, load_manifest
from app.headless.cli import main
from app.safety.atomic import is_temporary_name

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
# Precision explicit: "auto" times bf16 on this CPU, and the tests' fixed answer for that
# (tests/conftest.py) does not reach Ray's worker processes.
MODEL = ["--checkpoint", "random:sam2.1-tiny", "--image-size", "128", "--precision", "exact"]
W, H = 128, 96
LENGTHS = (4, 9, 5, 7, 4, 6)  # six clips of different lengths: largest-first has work to do


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module; its workers import this checkout."""
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
def clips(tmp_path_factory) -> list[tuple[Path, Path]]:
    """(video, prompts) of six clips; each prompt clicks the moving red square on frame 0."""
    folder = tmp_path_factory.mktemp("clips")
    pairs = []
    for i, frames in enumerate(LENGTHS):
        video = write_video(folder / f"clip{i}.mp4", frames=frames, width=W, height=H)
        prompts = folder / f"clip{i}.json"
        points = [[12, H // 2, 1], [100, 80, 0]]
        objects = [{"id": 1, "prompts": [{"frame": 0, "points": points}]}]
        if i % 2:
            objects.append({"id": 7, "prompts": [{"frame": 1, "box": [0, 20, 40, 60]}]})
        prompts.write_text(json.dumps({"objects": objects}))
        pairs.append((video, prompts))
    return pairs


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def batch(manifest: Path, out: Path, *extra: str) -> int:
    return main(["batch", str(manifest), *MODEL, "--out", str(out), "--workers", "2", *extra])


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def labels(folder: Path) -> list[np.ndarray]:
    return [np.array(Image.open(p)) for p in sorted((folder / "Annotations").glob("*.png"))]


def assert_logged_outputs_valid(out: Path, ids: set[str]) -> None:
    """Every id has a log line whose files exist with their checksums; no temporaries left."""
    records = {r["id"]: r for r in read_log(out / BATCH_LOG)}
    assert set(records) == ids
    for entry_id, record in records.items():
        assert record["outputs"] and record["frames"] > 0
        for output in record["outputs"]:
            assert sha256_file(out / output["path"]) == output["sha256"]
        assert len(labels(out / entry_id)) == record["frames"]
    litter = [p for p in out.rglob("*") if is_temporary_name(p.name)]
    assert litter == []


def test_six_videos_on_two_workers_give_the_masks_of_track(clips, tmp_path, capsys):
    manifest = write_manifest(
        tmp_path / "m.jsonl", [{"video": str(v), "prompts": str(p)} for v, p in clips]
    )
    out = tmp_path / "out"
    assert batch(manifest, out) == 0
    err = capsys.readouterr().err
    assert "batch: 6/6 videos" in err and "frames/s" in err and "ETA" in err
    assert_logged_outputs_valid(out, {f"clip{i}" for i in range(6)})
    for video, prompts in clips:
        alone = tmp_path / f"track-{video.stem}"
        argv = ["track", str(video), "--prompts", str(prompts), *MODEL, "--format", "png"]
        assert main([*argv, "--out", str(alone)]) == 0
        batched, tracked = labels(out / video.stem), labels(alone)
        assert len(batched) == len(tracked) == LENGTHS[int(video.stem[-1])]
        for a, b in zip(batched, tracked, strict=True):
            np.testing.assert_array_equal(a, b)
        assert any(a.any() for a in batched)  # the square was tracked, not an empty export


def davis_folder(path: Path) -> Path:
    """A DAVIS-style annotation of frame 0: the red square of `pattern_frame(0)` as object 1."""
    path.mkdir()
    label = np.zeros((H, W), np.uint8)
    label[H // 2 - 12 : H // 2 + 12, 0:24] = 1
    image = Image.fromarray(label, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.save(path / "00000.png")
    return path


def test_bad_video_and_bad_prompts_fail_alone(clips, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(clips[0][0].read_bytes()[:300])
    bad_prompts = tmp_path / "bad.json"
    bad_prompts.write_text(json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 99}]}]}))
    (video0, prompts0), (video1, _) = clips[0], clips[1]
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            {"video": str(video0), "prompts": str(prompts0), "id": "good"},
            {"video": str(corrupt), "prompts": str(prompts0)},
            {"video": str(video1), "prompts": str(bad_prompts), "id": "badprompts"},
            {"video": str(video1), "annotations": str(davis_folder(tmp_path / "ann"))},
        ],
    )
    out = tmp_path / "out"
    assert batch(manifest, out, "--format", "coco") == 1
    assert "2 finished, 0 skipped, 2 failed of 4" in capsys.readouterr().err
    failures = {f["line"]: f for f in read_log(out / FAILURES_LOG)}
    assert sorted(failures) == [2, 3]
    assert failures[2]["id"] == "corrupt" and "corrupt.mp4" in failures[2]["error"]
    assert "bad.json" in failures[3]["error"] and "objects[0].prompts[0]" in failures[3]["error"]
    assert all("\n" not in f["error"] for f in failures.values())
    done = {r["id"]: r for r in read_log(out / BATCH_LOG)}
    assert set(done) == {"good", "clip1"}
    coco = json.loads((out / "clip1" / "masks.json").read_text())
    assert len(coco["images"]) == LENGTHS[1] and coco["annotations"]
    assert not (out / "corrupt").exists() and not (out / "badprompts").exists()


def test_killed_worker_is_replaced_and_its_video_retried(clips, tmp_path):
    from app.headless.batch.scheduler import BatchSettings, run_batch

    entries = load_manifest(
        write_manifest(
            tmp_path / "m.jsonl", [{"video": str(v), "prompts": str(p)} for v, p in clips]
        )
    )
    out = tmp_path / "out"
    attempts: list[tuple[str, int]] = []

    def kill_first_two(event) -> None:
        attempts.append((event.entry_id, event.attempt))
        if len(attempts) in (1, 4):  # a fresh actor's video and one on a reused actor
            ray.kill(event.actor, no_restart=True)

    settings = BatchSettings("random:sam2.1-tiny", 128, "png", out, workers=2)
    summary = run_batch(entries, settings, observer=kill_first_two)
    assert (summary.finished, summary.failed, summary.interrupted) == (6, 0, False)
    retried = [entry_id for entry_id, attempt in attempts if attempt == 2]
    assert len(retried) == 2 and retried[0] == attempts[0][0]
    assert_logged_outputs_valid(out, {f"clip{i}" for i in range(6)})


def test_interrupted_batch_resumes_skipping_by_checksum(clips, tmp_path):
    from app.headless.batch.scheduler import BatchSettings, run_batch

    entries = load_manifest(
        write_manifest(
            tmp_path / "m.jsonl", [{"video": str(v), "prompts": str(p)} for v, p in clips]
        )
    )
    out = tmp_path / "out"
    settings = BatchSettings("random:sam2.1-tiny", 128, "png", out, workers=2)
    dispatched: list[str] = []

    def interrupt_at_fourth(event) -> None:
        dispatched.append(event.entry_id)
        if len(dispatched) == 4:  # two videos are done by now, one is in flight
            raise KeyboardInterrupt

    first = run_batch(entries, settings, observer=interrupt_at_fourth)
    assert first.interrupted and first.finished == 2
    finished = [r["id"] for r in read_log(out / BATCH_LOG)]
    assert len(finished) == 2
    # The largest videos go first: 9 and 7 frames.
    assert set(dispatched[:2]) == {"clip1", "clip3"}
    kept, tampered = out / finished[0], out / finished[1]
    kept_digest = digest_tree(kept)
    damaged = sorted((tampered / "Annotations").glob("*.png"))[0]
    damaged.write_bytes(damaged.read_bytes() + b"x")

    rerun: list[str] = []
    second = run_batch(entries, settings, observer=lambda e: rerun.append(e.entry_id))
    assert (second.skipped, second.finished, second.failed) == (1, 5, 0)
    assert finished[0] not in rerun and finished[1] in rerun
    assert digest_tree(kept) == kept_digest
    assert_logged_outputs_valid(out, {f"clip{i}" for i in range(6)})


def test_manifest_reports_every_bad_line(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        "\n".join(
            [
                '{"video": "a.mp4", "prompts": "a.json"}',
                "# a comment, skipped",
                '{"video": 3, "prompts": "a.json"}',
                '{"video": "b.mp4"}',
                "not json",
                '{"video": "c.mp4", "prompts": "c.json", "id": "../escape"}',
                '{"video": "d.mp4", "prompts": "d.json", "direction": "sideways"}',
                '{"video": "e.mp4", "prompts": "e.json", "colour": 1}',
            ]
        )
    )
    out = tmp_path / "out"
    assert batch(manifest, out) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6
    for line, number in zip(lines, (3, 4, 5, 6, 7, 8), strict=True):
        assert line.startswith(f"masklet batch: error: m.jsonl line {number}: ")
    assert "video: expected a path" in lines[0] and "'prompts', 'annotations' or 'find'" in lines[1]
    assert "id:" in lines[3] and "direction:" in lines[4] and "'colour'" in lines[5]
    assert "Traceback" not in "\n".join(lines) and not out.exists()


def test_default_ids_are_unique_stems_and_given_ids_must_be(tmp_path):
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            {"video": "x/clip.mp4", "prompts": "p.json"},
            {"video": "y/clip.mp4", "prompts": "p.json"},
            {"video": "frames/clip", "prompts": "p.json", "id": "clip-2"},
            {"video": "z/clip.mp4", "prompts": "p.json"},
        ],
    )
    entries = load_manifest(manifest)
    assert [e.id for e in entries] == ["clip", "clip-3", "clip-2", "clip-4"]
    assert entries[0].video == tmp_path / "x/clip.mp4"  # relative to the manifest's folder
    write_manifest(
        manifest,
        [{"video": "a.mp4", "prompts": "p.json", "id": "a"}] * 2,
    )
    with pytest.raises(ManifestError, match="line 2: id: 'a' is already used on line 1"):
        load_manifest(manifest)


def test_out_holding_an_input_is_refused_before_ray(clips, tmp_path, capsys):
    video, prompts = clips[0]
    manifest = write_manifest(
        tmp_path / "m.jsonl", [{"video": str(video), "prompts": str(prompts)}]
    )
    before = digest_tree(video.parent)
    assert batch(manifest, video.parent) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refusing to write into" in err
    assert digest_tree(video.parent) == before


def test_manifest_fifo_is_one_line(tmp_path):
    import os

    fifo = tmp_path / "m.jsonl"
    os.mkfifo(fifo)
    outcome = run_cli(["batch", str(fifo), *MODEL, "--out", str(tmp_path / "out")])
    assert_refused(outcome, code=1, says="m.jsonl")
