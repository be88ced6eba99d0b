"""Hostile project files: memory bombs, FIFOs, device links, symlinked mask folders.

Each case that could hang or exhaust memory runs in a capped child process (tests/hostile.py)
and must end in one clean line with the user's files untouched.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile import PLAIN_CAP, assert_refused, digest_tree, run_cli, run_python

from app.project.files import (
    FramePrompt,
    ObjectInfo,
    Project,
    ProjectError,
    load_project,
    mask_folder,
    save_project,
)
from app.project.mask_codec import CHUNK_FRAMES, ChunkError, decode_chunk, encode_rle
from app.project.mask_store import MaskStore

SIZE = (12, 16)
FRAMES = 300
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")


def _runs_covering(pixels: int) -> bytes:
    """An all-background RLE of `pixels` pixels in as few uint32 runs as the format allows."""
    runs = []
    while pixels > 0:
        step = min(pixels, 2**32 - 1)
        runs += [step, 0] if pixels > step else [step]
        pixels -= step
    return np.asarray(runs, "<u4").tobytes()


def _tiny_project(path: Path, width: int, height: int, mask_pixels: int) -> Path:
    """The issue's ~533-byte project: a video size and one prompt mask that claim a lot."""
    mask = base64.b64encode(_runs_covering(mask_pixels)).decode()
    doc = {
        "format": "masklet-project",
        "version": 1,
        "video": {"path": "v.mp4", "absolute_path": "/v.mp4", "num_frames": 1,
                  "height": height, "width": width},
        "objects": [{"id": 1, "name": "a", "category": "c", "color": [1, 2, 3], "visible": True}],
        "prompts": [{"frame": 0, "obj_id": 1, "points": [], "box": None, "mask": mask}],
        "settings": {},
        "masks": {"folder": path.name + "-masks", "chunk_frames": 256},
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def _export(project: Path, tmp_path: Path, **kwargs):
    out = tmp_path / "out.json"
    return run_cli(["export", project, "--format", "coco", "--out", out], **kwargs)


# -- memory bombs ------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [60_000, 200_000])
def test_tiny_project_claiming_a_huge_video_is_refused_before_allocating(tmp_path, side):
    project = _tiny_project(tmp_path / "bomb.masklet", side, side, side * side)
    assert project.stat().st_size < 600
    before = digest_tree(tmp_path)
    outcome = _export(project, tmp_path, mem_bytes=PLAIN_CAP, timeout=60)
    line = assert_refused(outcome, code=1, says="bomb.masklet: video: size")
    assert "over the limit" in line
    assert digest_tree(tmp_path) == before


def test_prompt_mask_must_cover_exactly_the_video(tmp_path):
    project = _tiny_project(tmp_path / "bomb.masklet", 640, 480, 60_000 * 60_000)
    outcome = _export(project, tmp_path, mem_bytes=PLAIN_CAP, timeout=60)
    assert_refused(outcome, code=1, says="prompts[0].mask covers 3600000000 pixels")


def test_many_full_frame_prompt_masks_load_in_flat_memory(tmp_path):
    """A few KB declaring 2000 prompt masks of 8192x8192 (each a 4-byte RLE): 134 GB if they
    were decoded on load; kept encoded, the load fits in the 2 GiB cap."""
    side, count = 8192, 2000
    path = _tiny_project(tmp_path / "many.masklet", side, side, side * side)
    doc = json.loads(path.read_text())
    doc["video"]["num_frames"] = count
    doc["prompts"] = [dict(doc["prompts"][0], frame=f) for f in range(count)]
    path.write_text(json.dumps(doc))
    code = (
        "from app.project.files import load_project\n"
        f"project, _ = load_project({str(path)!r})\n"
        "print(len(project.prompts), sum(len(p.mask_rle) for p in project.prompts))"
    )
    outcome = run_python(code, mem_bytes=PLAIN_CAP, timeout=60)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert outcome.stdout.split() == [str(count), str(4 * count)]


def test_chunk_declaring_more_entries_than_it_holds_is_refused():
    header = struct.pack("<4sHHIIII", b"MKLC", 1, 0, *SIZE, 0, 2**32 - 1)
    blob = header + struct.pack("<I", zlib.crc32(header))
    with pytest.raises(ChunkError, match="declares 4294967295 entries but has room for at most 0"):
        decode_chunk(blob, SIZE)


def test_oversized_project_file_is_refused_by_its_size(tmp_path):
    path = tmp_path / "huge.masklet"
    with open(path, "wb") as f:
        f.truncate(600 * 2**20)  # sparse: no disk used, but stat says 600 MiB
    with pytest.raises(ProjectError, match="huge.masklet: cannot read .*over the 512 MiB limit"):
        load_project(path)


# -- hangs and devices -------------------------------------------------------------------------


def _saved(tmp_path: Path) -> Path:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not opened by these tests")
    path = tmp_path / "demo.masklet"
    project = Project(
        str(video), [ObjectInfo(1, "a", "c", (1, 2, 3))], [], {}, FRAMES, SIZE
    )  # fmt: skip
    masks = MaskStore(SIZE, num_frames=FRAMES)
    for frame in (0, 1, CHUNK_FRAMES + 1):
        masks.set(frame, 1, np.eye(*SIZE, dtype=bool))
    save_project(path, project, masks)
    return path


def _load_in_child(path: Path):
    code = (
        "import sys\nfrom app.project.files import ProjectError, load_project\n"
        f"try:\n    load_project({str(path)!r})\n"
        "except ProjectError as exc:\n    sys.exit(print(exc, file=sys.stderr) or 1)\n"
    )
    return run_python(code, mem_bytes=PLAIN_CAP, timeout=30)


@posix_only
def test_fifo_as_project_file_is_refused_not_waited_on(tmp_path):
    path = tmp_path / "pipe.masklet"
    os.mkfifo(path)
    assert_refused(_load_in_child(path), code=1, says="pipe.masklet: cannot read (is not a regular")


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_non_regular_chunk_is_refused(tmp_path, kind):
    path = _saved(tmp_path)
    chunk = mask_folder(path) / "chunk-000001.bin"
    chunk.unlink()
    if kind == "fifo":
        os.mkfifo(chunk)
    else:
        chunk.symlink_to("/dev/zero")
    before = digest_tree(tmp_path)
    line = assert_refused(_load_in_child(path), code=1, says="chunk-000001.bin")
    assert "not a regular file" in line
    assert digest_tree(tmp_path) == before


# -- writes where they should not go -----------------------------------------------------------


def test_symlinked_mask_folder_is_never_written_through(tmp_path):
    path = _saved(tmp_path)
    project, masks = load_project(path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "chunk-000007.bin").write_bytes(b"not Masklet's")
    (elsewhere / "chunk-000001.bin").write_bytes(b"not Masklet's either")
    folder = mask_folder(path)
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.symlink_to(elsewhere)
    before = digest_tree(tmp_path)
    masks.set(2, 1, None)
    for only_dirty in (False, True):
        with pytest.raises(ValueError, match="symbolic link"):
            save_project(path, project, masks, only_dirty=only_dirty)
    assert digest_tree(tmp_path) == before


def test_save_deletes_only_chunk_files_it_wrote(tmp_path):
    path = _saved(tmp_path)
    folder = mask_folder(path)
    foreign = folder / "chunk-000005.bin"
    foreign.write_bytes(b"someone else's file with our naming")
    project, masks = load_project(path)  # the unlisted file is not read: it loads
    assert masks.frames(1) == [0, 1, CHUNK_FRAMES + 1]
    masks.remove_object(1)
    save_project(path, project, masks)
    assert sorted(p.name for p in folder.iterdir()) == ["chunk-000005.bin"]
    assert foreign.read_bytes() == b"someone else's file with our naming"
    assert json.loads(path.read_text())["masks"]["chunks"] == []


def test_save_as_over_another_project_removes_that_projects_chunks_only(tmp_path):
    path = _saved(tmp_path)
    other = tmp_path / "other.masklet"
    project, masks = load_project(path)
    save_project(other, project, masks)
    (mask_folder(other) / "notes.txt").write_text("user's notes")
    fresh = MaskStore(SIZE, num_frames=FRAMES)
    fresh.set(3, 1, np.eye(*SIZE, dtype=bool))
    save_project(other, project, fresh)  # a new store: knows nothing of other's chunks
    names = sorted(p.name for p in mask_folder(other).iterdir())
    assert names == ["chunk-000000.bin", "notes.txt"]
    _, loaded = load_project(other)
    assert loaded.frames(1) == [3]


def test_listed_chunk_that_is_missing_is_reported(tmp_path):
    path = _saved(tmp_path)
    (mask_folder(path) / "chunk-000001.bin").unlink()
    with pytest.raises(
        ProjectError, match=r"demo.masklet: mask file .*chunk-000001.bin is missing"
    ):
        load_project(path)


def test_project_written_before_the_chunk_list_still_loads(tmp_path):
    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    del doc["masks"]["chunks"]
    path.write_text(json.dumps(doc))
    _, masks = load_project(path)
    assert masks.frames(1) == [0, 1, CHUNK_FRAMES + 1]


def test_kill_litter_next_to_a_project_is_swept_on_save(tmp_path):
    path = _saved(tmp_path)
    dead = _dead_pid()
    litter = [
        tmp_path / f".demo.masklet.masklet-tmp-{dead}-0badf00d",
        mask_folder(path) / f".chunk-000000.bin.masklet-tmp-{dead}-0badf00d",
    ]
    for item in litter:
        item.write_bytes(b"half-written")
    project, masks = load_project(path)
    save_project(path, project, masks)
    assert not any(item.exists() for item in litter)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_prompt_masks_stay_encoded_through_a_round_trip(tmp_path):
    path = _saved(tmp_path)
    project, masks = load_project(path)
    rle = encode_rle(np.eye(*SIZE, dtype=bool))
    project.prompts.append(FramePrompt(4, 1, [], None, rle))
    save_project(path, project, masks)
    loaded, _ = load_project(path)
    assert loaded.prompts[0].mask_rle == rle
    project.prompts[0] = FramePrompt(4, 1, [], None, rle[:-4])
    with pytest.raises(ValueError, match="prompt mask on frame 4 does not match the video"):
        save_project(path, project, masks)
