"""`masklet track` / `masklet export` against hostile inputs (issue 9, "Unbreakable").

Each case asserts what the user sees (an exit code and exactly one line on stderr) and
that the user's files are untouched. Cases that could hang, crash or exhaust memory run in
a capped child process (tests/hostile.py). Refusals that need no model are proven to come
before the model loads by replacing the loader in-process and asserting it never ran.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import assert_refused, digest_tree, run_cli
from video_fixtures import write_image_folder, write_video

import app.headless.cli
from app.headless.cli import main
from app.project.files import ObjectInfo, Project, mask_folder, save_project
from app.project.mask_store import MaskStore

H, W, N = 64, 96, 4
PROMPTS = {"objects": [{"id": 1, "prompts": [{"frame": 0, "points": [[30, 30, 1]]}]}]}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=N, width=W, height=H)


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(PROMPTS))
    return path


def track(video: Path, prompts: Path, fmt: str, out: Path, *extra: str) -> list[str]:
    return [
        "track",
        str(video),
        "--prompts",
        str(prompts),
        "--checkpoint",
        "random:sam2.1-tiny",
        "--image-size",
        "128",
        "--format",
        fmt,
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def model_loads(monkeypatch) -> list[str]:
    """Replace the CLI's one model loader; the list records every attempt to load."""
    calls: list[str] = []

    def refuse(checkpoint, image_size, device):
        calls.append(checkpoint)
        raise ValueError("the model was loaded")

    monkeypatch.setattr(app.headless.cli, "_load_model", refuse)
    return calls


def refused_in_process(capsys, argv: list[str], *, code: int = 1) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_loader_spy_sees_a_valid_run(clip, prompts, tmp_path, capsys, model_loads):
    """Control: with nothing wrong, the run does reach the (replaced) loader."""
    line = refused_in_process(capsys, track(clip, prompts, "coco", tmp_path / "o.json"))
    assert model_loads == ["random:sam2.1-tiny"] and "the model was loaded" in line


# -- memory bombs ------------------------------------------------------------------------------


def test_prompts_file_with_a_million_points(clip, tmp_path):
    bomb = tmp_path / "bomb.json"
    points = b"[1,1,1]," * 1_000_000 + b"[1,1,1]"
    bomb.write_bytes(b'{"objects":[{"id":1,"prompts":[{"frame":0,"points":[' + points + b"]}]}]}")
    before = digest_tree(tmp_path, clip)
    outcome = run_cli(track(clip, bomb, "coco", tmp_path / "o.json"), timeout=90)
    line = assert_refused(outcome, says="1000001 points, over the limit of 1024")
    assert "bomb.json" in line
    assert digest_tree(tmp_path, clip) == before


def test_oversized_prompts_file_is_not_read(clip, tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(2**40)  # sparse: a terabyte that takes no disk space
    outcome = run_cli(track(clip, big, "coco", tmp_path / "o.json"), timeout=90)
    assert_refused(outcome, says="big.json: is 1048576 MiB, over the 16 MiB limit")


def test_huge_image_size_is_a_usage_error(clip, prompts, tmp_path):
    args = track(clip, prompts, "coco", tmp_path / "o.json")
    args[args.index("128")] = "16384"
    outcome = run_cli(args, timeout=90)
    assert_refused(outcome, code=2, says="--image-size: expected a multiple of 32 up to 4096")
    assert not (tmp_path / "o.json").exists()


# -- hangs: FIFOs and devices where a file is expected ---------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)  # nobody ever writes: opening it for reading would block forever
    return path


@pytest.mark.parametrize("role", ["video", "prompts", "checkpoint"])
def test_fifo_given_to_track(clip, prompts, tmp_path, fifo, role):
    args = track(clip, prompts, "coco", tmp_path / "o.json")
    slot = {"video": 1, "prompts": 3, "checkpoint": 5}[role]
    args[slot] = str(fifo)
    before = digest_tree(tmp_path, clip)
    line = assert_refused(run_cli(args, timeout=60), says="not a regular file")
    assert "pipe" in line
    assert digest_tree(tmp_path, clip) == before


@pytest.mark.parametrize("role", ["prompts", "checkpoint"])
def test_device_behind_a_symlink_given_to_track(clip, prompts, tmp_path, role):
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")  # reading it never ends
    args = track(clip, prompts, "coco", tmp_path / "o.json")
    args[3 if role == "prompts" else 5] = str(zero)
    assert_refused(run_cli(args, timeout=60), says="not a regular file")


def test_checkpoint_folder_says_so_before_the_model_loads(
    clip, prompts, tmp_path, capsys, model_loads
):
    args = track(clip, prompts, "coco", tmp_path / "o.json")
    args[5] = str(tmp_path)
    line = refused_in_process(capsys, args)
    assert f"checkpoint {tmp_path} is a folder, not a file" in line and not model_loads


@pytest.fixture
def project(clip, tmp_path) -> Path:
    """A saved project over `clip`: object 3 on every frame."""
    store = MaskStore((H, W), num_frames=N)
    mask = np.zeros((H, W), bool)
    mask[10:30, 20:50] = True
    for frame in range(N):
        store.set(frame, 3, mask)
    proj = Project(str(clip), [ObjectInfo(3, "a", "x", (255, 0, 0))], [], {}, N, (H, W))
    path = tmp_path / "proj" / "p.masklet"
    path.parent.mkdir()
    save_project(path, proj, store)
    return path


def test_fifo_as_project_and_as_its_video(project, tmp_path, fifo):
    outcome = run_cli(["export", str(fifo), "--format", "coco", "--out", str(tmp_path / "o")])
    assert_refused(outcome, says="pipe: is not a regular file")
    doc = json.loads(project.read_text())
    doc["video"]["path"] = None
    doc["video"]["absolute_path"] = str(fifo)
    project.write_text(json.dumps(doc))
    before = digest_tree(project.parent)
    outcome = run_cli(["export", str(project), "--format", "mp4", "--out", str(tmp_path / "o")])
    assert_refused(outcome, says=f"video {fifo} is not a regular file")
    assert digest_tree(project.parent) == before


# -- outputs that would replace an input -----------------------------------------------------


def test_track_overlay_onto_its_own_video(clip, prompts, tmp_path):
    before = digest_tree(clip, prompts)
    outcome = run_cli(track(clip, prompts, "mp4", clip), timeout=90)
    assert_refused(outcome, says=f"refusing to write {clip}: it is the input {clip}")
    assert digest_tree(clip, prompts) == before


def test_export_onto_its_own_project(project, tmp_path):
    before = digest_tree(project.parent)
    outcome = run_cli(["export", str(project), "--format", "coco", "--out", str(project)])
    assert_refused(outcome, says=f"refusing to write {project}: it is the input {project}")
    assert digest_tree(project.parent) == before


def _linked(kind: str, target: Path, tmp_path: Path) -> Path:
    """`target` itself, or a symlink / hard link to it under another name."""
    if kind == "same":
        return target
    link = tmp_path / f"{kind}-link{target.suffix}"
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return link


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("victim", ["video", "prompts", "checkpoint"])
def test_track_output_is_an_input_file(clip, prompts, tmp_path, capsys, model_loads, kind, victim):
    video = tmp_path / "v.mp4"
    video.write_bytes(clip.read_bytes())  # a hard link must stay on one file system
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"weights")
    target = {"video": video, "prompts": prompts, "checkpoint": checkpoint}[victim]
    out = _linked(kind, target, tmp_path)
    args = track(video, prompts, "coco", out)
    args[5] = str(checkpoint)
    before = digest_tree(tmp_path)
    line = refused_in_process(capsys, args)
    assert f"refusing to write {out}: it is the input {target}" in line
    assert digest_tree(tmp_path) == before and not model_loads


def test_track_outputs_around_an_image_folder(tmp_path, prompts, capsys, model_loads):
    frames = write_image_folder(tmp_path / "data" / "JPEGImages" / "bear", ".jpg", N, W, H)
    before = digest_tree(tmp_path)
    cases = [
        ("png", frames, [], f"refusing to write {frames}: it is the input {frames}"),
        ("png", frames / "masks", [], "is inside the input folder"),
        ("coco", frames / "c.json", [], "is inside the input folder"),
        ("png", tmp_path, [], f"refusing to write into {tmp_path}: it holds the input"),
        # DAVIS layout: --images would write JPEGImages/bear/00000.jpg over the frames
        (
            "coco",
            tmp_path / "data" / "c.json",
            ["--images", "jpg"],
            f"refusing to write into {tmp_path / 'data' / 'JPEGImages'}: it holds the input",
        ),
    ]
    for fmt, out, extra, message in cases:
        line = refused_in_process(capsys, track(frames, prompts, fmt, out, *extra))
        assert message in line, (fmt, out, line)
    assert digest_tree(tmp_path) == before and not model_loads


@pytest.mark.parametrize(
    ("fmt", "out", "message"),
    [
        ("png", "masks", "refusing to write {out}: it is the input {out}"),
        ("coco", "masks/chunk-000000.bin", "is inside the input folder {masks}"),
        ("png", ".", "refusing to write into {out}: it holds the input {project}"),
        ("mp4", "video", "refusing to write {out}: it is the input {clip}"),
    ],
)
def test_export_outputs_around_the_project(project, clip, tmp_path, capsys, fmt, out, message):
    masks = mask_folder(project)
    named = {"masks": masks, ".": project.parent, "video": clip}
    target = named.get(out) or masks / Path(out).name
    before = digest_tree(project.parent, clip)
    argv = ["export", str(project), "--format", fmt, "--out", str(target)]
    line = refused_in_process(capsys, argv)
    assert message.format(out=target, masks=masks, project=project, clip=clip) in line
    assert digest_tree(project.parent, clip) == before


# -- bad prompts files end in exit 1 with one line, not exit 3 ---------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested more than 64 levels deep"),
        (b'{"objects": [{"id": 1' + b"0" * 400 + b"}]}", "an integer of 401 digits is too large"),
        ('{"objects": [{"name": "caf\u00e9"}]}'.encode("latin-1"), "not UTF-8 text"),
        (
            b'{"objects": [{"id": 1, "prompts": [{"frame": 0, "points": [[1e300, 5, 1]]}]}]}',
            "points[0]: x and y must be numbers within",
        ),
        (
            b'{"objects": [{"id": 1, "prompts": [{"frame": 0, "box": [0, 0, 1e39, 5]}]}]}',
            "box: expected 4 numbers",
        ),
    ],
    ids=["deep-nesting", "huge-integer", "latin-1", "1e300-point", "float32-overflow-box"],
)
def test_hostile_prompts_exit_1_naming_the_file(clip, tmp_path, raw, message):
    bad = tmp_path / "hostile.json"
    bad.write_bytes(raw)
    line = assert_refused(run_cli(track(clip, bad, "coco", tmp_path / "o.json"), timeout=90))
    assert f"prompts file {bad}: " in line and message in line


@pytest.mark.slow  # tracks 4 frames with a random-init model at 128 px (a few seconds)
def test_prompts_with_a_byte_order_mark_track(clip, tmp_path, capsys):
    bom = tmp_path / "windows.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(PROMPTS).encode())
    out = tmp_path / "o.json"
    assert main(track(clip, bom, "coco", out)) == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert len(doc["images"]) == N and {a["track_id"] for a in doc["annotations"]} <= {1}


# -- refused before the model loads, not after tracking a whole video ---------------------------


def _prompts_with(path: Path, objects: list[dict]) -> Path:
    path.write_text(json.dumps({"objects": objects}))
    return path


def test_problems_known_before_tracking(clip, prompts, tmp_path, capsys, model_loads):
    readonly = Path("/proc/self")  # not even root may create files there
    cases = [
        (track(clip, prompts, "coco", tmp_path / "o.json", "--objects", "7"), "unknown object id"),
        (track(clip, prompts, "coco", tmp_path / "o.json", "--frames", "2:9"), "frame range ends"),
        (track(clip, prompts, "coco", readonly / "o.json"), "/proc/self is not writable"),
        (track(clip, prompts, "coco", prompts / "o.json"), f"{prompts} is not a folder"),
        (track(clip, prompts, "png", prompts.with_name("x.txt")), "exists and is not a folder"),
        (track(clip, prompts, "coco", tmp_path), "is a folder; give a file path"),
        (track(clip, prompts, "coco", Path("/dev/null")), "exists and is not a regular file"),
    ]
    prompts.with_name("x.txt").write_text("a file, not a folder")
    huge_id = [{"id": 2**31, "prompts": [{"frame": 0, "box": [0, 0, 5, 5]}]}]
    cases.append(
        (
            track(
                clip, _prompts_with(tmp_path / "huge-id.json", huge_id), "coco", tmp_path / "o.json"
            ),
            "id: expected an integer in 1-2147483647",
        )
    )
    boxes = [{"id": i, "prompts": [{"frame": 0, "box": [0, 0, 5, 5]}]} for i in range(1, 257)]
    cases.append(
        (
            track(
                clip, _prompts_with(tmp_path / "256-objects.json", boxes), "png", tmp_path / "png"
            ),
            "a palette PNG holds at most 255 objects",
        )
    )
    before = digest_tree(tmp_path, clip)
    for argv, message in cases:
        line = refused_in_process(capsys, argv)
        assert message in line, (argv, line)
    assert digest_tree(tmp_path, clip) == before and not model_loads


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--frames", "5:2", "the range '5:2' is empty"),
        ("--frames", "-3:", "frame -3 is outside"),
        ("--frames", "0:99999999999", "frame 99999999999 is outside"),
        ("--frames", "1" * 5000 + ":", "start frame: expected a whole number"),
        ("--step", "0", "expected a step in 1-"),
        ("--step", "10000000000", "expected a step in 1-"),
        ("--objects", "-1", "object id -1 is outside"),
        ("--objects", str(2**40), f"object id {2**40} is outside"),
        ("--objects", ",".join(["1"] * 10_001), "10001 ids, over the limit of 10000"),
        ("--image-size", "0", "expected a multiple of 32"),
        ("--image-size", "-32", "expected a multiple of 32"),
    ],
)
def test_absurd_option_values_exit_2(
    clip, prompts, tmp_path, capsys, model_loads, option, value, message
):
    # `--option=value`, as a user must write a value that starts with "-"
    argv = track(clip, prompts, "coco", tmp_path / "o.json", f"{option}={value}")
    line = refused_in_process(capsys, argv, code=2)
    assert f"argument {option}: {message}" in line and not model_loads


def test_non_finite_checkpoint_is_one_line(clip, prompts, tmp_path, capsys):
    weights = {"image_encoder.trunk.pos_embed": torch.zeros(1, 96, 7, 7)}
    weights["image_encoder.trunk.pos_embed"][0, 5, 1, 1] = float("nan")
    checkpoint = tmp_path / "nan.pt"
    torch.save({"model": weights}, checkpoint)
    argv = track(clip, prompts, "coco", tmp_path / "o.json")
    argv[5] = str(checkpoint)
    line = refused_in_process(capsys, argv)
    assert line == (
        "masklet track: error: nan.pt: tensor image_encoder.trunk.pos_embed holds NaN values; "
        "the file is damaged"
    )
    assert not (tmp_path / "o.json").exists()


def test_damaged_frame_in_an_image_folder_is_one_line(tmp_path, prompts):
    """OpenCV's own C++ warnings about the damaged PNG must not add lines to stderr."""
    frames = write_image_folder(tmp_path / "frames", ".png", N, W, H)
    damaged = sorted(frames.glob("*.png"))[0]
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 64)
    outcome = run_cli(track(frames, prompts, "coco", tmp_path / "o.json"), timeout=90)
    assert_refused(outcome, says=f"{damaged}")
