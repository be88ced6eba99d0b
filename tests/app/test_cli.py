"""`masklet` command line: track and export end to end, and one-line errors for bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from app.headless.cli import ProgressBar, main
from app.project.files import ObjectInfo, Project, save_project
from app.project.mask_store import MaskStore

ROOT = Path(__file__).resolve().parents[2]
H, W, N = 96, 128, 6


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A 6-frame 128x96 H.264 clip of a bright square drifting right."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=6)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            rgb = np.full((H, W, 3), 40, np.uint8)
            rgb[30:60, 20 + 5 * i : 50 + 5 * i] = (230, 200, 60)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(
        json.dumps(
            {
                "objects": [
                    {
                        "id": 1,
                        "name": "square",
                        "category": "shape",
                        "prompts": [{"frame": 0, "points": [[35, 45, 1], [100, 80, 0]]}],
                    },
                    {"id": 2, "prompts": [{"frame": 2, "box": [0, 0, 20, 20]}]},
                ]
            }
        )
    )
    return path


def track_args(video: Path, prompts: Path, fmt: str, out: Path) -> list[str]:
    return [
        "track",
        str(video),
        "--prompts",
        str(prompts),
        "--checkpoint",
        "random:sam2.1-tiny",
        "--image-size",
        "256",
        "--format",
        fmt,
        "--out",
        str(out),
    ]


@pytest.mark.slow  # a real (random-init) SAM 2.1 tiny on 6 frames: ~20 s of CPU
def test_track_in_process_writes_valid_coco(video, prompts, tmp_path, capsys):
    out = tmp_path / "masks.json"
    assert main(track_args(video, prompts, "coco", out)) == 0
    err = capsys.readouterr().err
    assert "\rtracking [" in err and f"wrote {out}" in err
    coco = COCO(str(out))
    assert len(coco.dataset["images"]) == N
    assert {c["name"] for c in coco.dataset["categories"]} <= {"shape", "object"}
    for ann in coco.dataset["annotations"]:
        mask = coco.annToMask(ann)
        assert mask.shape == (H, W) and mask.sum() == ann["area"] > 0
        assert ann["track_id"] in (1, 2)
        assert 0.0 <= ann["score"] <= 1.0
    # Every mask here is the model's, so scores are its predicted IoUs, not the 1.0 of
    # masks without one.
    assert any(ann["score"] != 1.0 for ann in coco.dataset["annotations"])


@pytest.mark.slow
def test_track_subprocess_png(video, prompts, tmp_path):
    out = tmp_path / "png"
    command = [sys.executable, "-m", "app.headless.cli", *track_args(video, prompts, "png", out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = sorted((out / "Annotations").glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(N)]
    image = Image.open(files[0])
    assert image.mode == "P" and image.size == (W, H)
    assert set(np.unique(np.array(image))) <= {0, 1, 2}


@pytest.fixture
def project(video, tmp_path) -> tuple[Path, MaskStore]:
    store = MaskStore((H, W), num_frames=N)
    for f in range(N):
        mask = np.zeros((H, W), bool)
        mask[10 + f : 40, 5:70] = True
        mask[20:25, 20:30] = False
        store.set(f, 4, mask)
        store.set(f, 8, mask[::-1].copy() if f % 2 else None, present=f % 2 == 1)
    objects = [ObjectInfo(4, "a", "x", (255, 0, 0)), ObjectInfo(8, "b", "y", (0, 255, 0))]
    proj = Project(str(video), objects, [], {}, N, (H, W))
    path = tmp_path / "p.masklet"
    save_project(path, proj, store)
    return path, store


@pytest.mark.parametrize("fmt", ["png", "coco", "ytvis", "mp4"])
def test_export_project(project, tmp_path, fmt):
    path, store = project
    out = tmp_path / ("out" if fmt == "png" else f"out.{fmt}")
    code = main(
        [
            "export",
            str(path),
            "--format",
            fmt,
            "--out",
            str(out),
            "--frames",
            "1:5",
            "--step",
            "2",
            "--objects",
            "8,4",
        ]
    )
    assert code == 0 and out.exists()
    if fmt == "coco":
        coco = COCO(str(out))
        assert [img["frame_index"] for img in coco.dataset["images"]] == [1, 3]
        for ann in coco.dataset["annotations"]:
            frame = coco.imgs[ann["image_id"]]["frame_index"]
            np.testing.assert_array_equal(
                coco.annToMask(ann).astype(bool), store.get(frame, ann["track_id"])
            )
    if fmt == "mp4":
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 2


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_bad_inputs_give_one_line(video, prompts, project, tmp_path, capsys):
    out = str(tmp_path / "o.json")
    assert main(track_args(tmp_path / "nope.mp4", prompts, "coco", tmp_path / "o.json")) == 1
    assert "video not found" in one_line_error(capsys)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 0, "box": [1, 2]}]}]}))
    assert main(track_args(video, bad, "coco", tmp_path / "o.json")) == 1
    assert "objects[0].prompts[0].box: expected 4 numbers" in one_line_error(capsys)

    far = tmp_path / "far.json"
    far.write_text(
        json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 9, "box": [1, 2, 3, 4]}]}]})
    )
    assert main(track_args(video, far, "coco", tmp_path / "o.json")) == 1
    assert "past the end of the video (6 frames)" in one_line_error(capsys)

    garbage = tmp_path / "ckpt.pt"
    garbage.write_bytes(b"not a checkpoint")
    args = track_args(video, prompts, "coco", tmp_path / "o.json")
    args[args.index("random:sam2.1-tiny")] = str(garbage)
    assert main(args) == 1
    assert "ckpt.pt" in one_line_error(capsys)
    garbage.write_bytes(b"junk\n")  # torch's unpickler fails with a bare KeyError on this
    assert main(args) == 1
    assert "ckpt.pt: not a PyTorch checkpoint" in one_line_error(capsys)
    args[args.index(str(garbage))] = "random:sam9-huge"
    assert main(args) == 1
    assert "sam9-huge" in one_line_error(capsys)
    args[args.index("random:sam9-huge")] = "random:sam2.1-tiny"
    args[args.index("256")] = "100"
    assert main(args) == 2
    assert "--image-size: expected a multiple of 32 up to 4096, got 100" in one_line_error(capsys)

    broken = tmp_path / "broken.masklet"
    broken.write_text("{")
    assert main(["export", str(broken), "--format", "coco", "--out", out]) == 1
    assert "broken.masklet" in one_line_error(capsys)

    path, _ = project
    for extra, code, message in [
        (["--frames", "x"], 2, "argument --frames: expected A:B"),
        (["--objects", "1,q"], 2, "argument --objects: expected ids"),
        (["--objects", "5"], 1, r"unknown object id(s) [5]"),
        (["--frames", "2:99"], 1, "frame range ends at 99"),
    ]:
        assert main(["export", str(path), "--format", "coco", "--out", out, *extra]) == code
        assert message in one_line_error(capsys)
    assert main(["export", str(path), "--format", "gif", "--out", out]) == 2
    assert "invalid choice: 'gif'" in one_line_error(capsys)
    assert not Path(out).exists()


def test_subprocess_bad_input_exit_code(tmp_path):
    command = [
        sys.executable,
        "-m",
        "app.headless.cli",
        "export",
        str(tmp_path / "none.masklet"),
        "--format",
        "png",
        "--out",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "masklet export: error: none.masklet: file not found"
    ]


def test_no_subcommand_starts_the_gui(monkeypatch):
    opened = []
    fake = types.ModuleType("app.gui.main")
    fake.run_app = lambda video: opened.append(video) or 0
    monkeypatch.setitem(sys.modules, "app.gui.main", fake)
    assert main(["clip.mp4"]) == 0 and main([]) == 0
    assert opened == ["clip.mp4", None]


def test_bad_gui_arguments_exit_2_with_one_line(capsys):
    assert main(["--bogus"]) == 2
    assert one_line_error(capsys) == "masklet: error: unrecognized arguments: --bogus"
    assert main(["--help"]) == 0
    assert "masklet track --help" in capsys.readouterr().out


def test_progress_bar_redraws_in_place_with_rate_and_eta():
    stream = io.StringIO()
    ticks = iter([10.0, 10.1, 12.1, 14.1, 16.1])
    bar = ProgressBar("work", stream, width=6, clock=lambda: next(ticks))
    bar(0, 6)
    bar(1, 6)  # the prompted frame, 0.1 s: 10 frames/s said nothing of the rest
    bar(2, 6)  # one representative frame is not yet a rate
    bar(4, 6)  # 3 frames in 4 s: 0.75/s, 2 left -> 3 s
    bar(6, 6)  # 5 frames in 6 s, none left
    bar.close()
    assert stream.getvalue() == (
        "\rwork [------] 0/6"
        "\rwork [#-----] 1/6  estimating…"
        "\rwork [##----] 2/6  estimating…"
        "\rwork [####--] 4/6  0.75 frames/s  ETA 0:00:03"
        "\rwork [######] 6/6  0.83 frames/s  ETA 0:00:00\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("keys", "direction", "frames", "passes"),
    [
        ((0,), "forward", (0, 20), [("forward", 20)]),  # not all 250
        ((0,), "forward", (0, None), [("forward", 250)]),
        ((5, 30), "forward", (10, 20), [("forward", 15)]),  # from keyframe 5 up to 19
        ((100,), "backward", (40, 60), [("backward", 61)]),  # 100 down to 40
        ((10, 30), "both", (0, 20), [("forward", 10), ("backward", 31)]),
        ((30,), "forward", (0, 20), []),  # the only keyframe is past the range
        ((0,), "forward", (0, 1000), [("forward", 250)]),
    ],
)
def test_tracking_is_bounded_by_frames(keys, direction, frames, passes):
    from app.headless.tracking import Window, pass_frames

    start, stop = frames
    window = Window(start, 250 if stop is None else min(stop, 250), direction)
    both = ("forward", "backward") if direction == "both" else (direction,)
    counts = [(d, len(pass_frames(list(keys), window, d))) for d in both]
    assert [(d, n) for d, n in counts if n > 0] == passes


def test_track_help_says_frames_bound_tracking(capsys):
    assert main(["track", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "tracking runs from the prompted frames up to frame B-1" in help_text


@pytest.mark.slow  # a real (random-init) SAM 2.1 tiny on 2 frames
def test_track_frames_tracks_only_the_range(video, prompts, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    out = tmp_path / "masks.json"
    assert main([*track_args(video, prompts, "coco", out), "--frames", "0:2"]) == 0
    err = terminal.getvalue()
    # Shown while the model loads, then erased before the progress line draws.
    assert err.startswith("loading model…\r" + " " * 14 + "\r\rtracking [")
    assert "2/2" in err and f"/{N}" not in err.split("wrote")[0]
    # Two frames: the prompted one and one more are too few for a rate (app.headless.eta).
    assert "estimating…" in err and "frames/s  ETA" not in err.split("exporting")[0]
    assert len(COCO(str(out)).dataset["images"]) == 2


def test_precision_option_lists_the_model_choices_and_refuses_others(capsys):
    from app.headless.cli_args import PRECISIONS
    from model.engine.precision import PRECISION_CHOICES

    assert PRECISIONS == PRECISION_CHOICES
    for command in ("track", "batch"):
        assert main([command, "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        assert "--precision {auto,exact,fast}" in help_text
        assert "exact: float32" in help_text and "fast: bf16" in help_text
    out = "--out", "o.json"
    assert main(["track", "clip.mp4", "--prompts", "p.json", "--checkpoint", "c.pt", *out,
                 "--precision", "half"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "--precision" in err and "invalid choice" in err and "\n" not in err


@pytest.mark.slow  # a real (random-init) SAM 2.1 tiny on 2 frames
@pytest.mark.parametrize(("given", "expected"), [([], "auto"), (["--precision", "fast"], "fast")])
def test_track_session_gets_the_precision(video, prompts, tmp_path, monkeypatch, capsys, given,
                                          expected):  # fmt: skip
    import app.headless.tracking
    from model.engine.session import TrackingSession

    opened: list[TrackingSession] = []

    def spy(*args, **kwargs) -> TrackingSession:
        opened.append(TrackingSession(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(app.headless.tracking, "TrackingSession", spy)
    monkeypatch.setattr("model.engine.precision._cpu_native_bf16", lambda: True)
    out = tmp_path / "masks.json"
    assert main([*track_args(video, prompts, "coco", out), "--frames", "0:2", *given]) == 0
    assert len(opened) == 1
    session = opened[0]
    if expected == "fast":
        assert session.precision == "fast"
    else:
        from model.engine.precision import resolve_precision

        assert session.precision == resolve_precision("auto", "cpu")[0]
    # Nothing to warn about: auto, or fast on this CPU (faked to have native bf16).
    assert "note:" not in capsys.readouterr().err


def test_batch_worker_tracks_in_the_requested_precision(monkeypatch, tmp_path):
    import app.headless.batch.worker as batch_worker
    from app.headless.batch.manifest import ManifestEntry
    from app.headless.cli import _build_parser

    args = _build_parser("batch").parse_args(
        ["m.jsonl", "--checkpoint", "random:sam2.1-tiny", "--out", "o", "--precision", "exact"]
    )
    assert args.precision == "exact"
    jobs = []
    monkeypatch.setattr(batch_worker, "load_model", lambda *a: object())
    monkeypatch.setattr(batch_worker, "run_track", lambda job, _, **kw: jobs.append(job) or 1 / 0)
    worker = batch_worker.TrackWorker("random:sam2.1-tiny", 128, "cpu", args.precision)
    entry = ManifestEntry(1, "a", tmp_path / "a.mp4", tmp_path / "p.json", None, "forward")
    assert "error" in worker.run(batch_worker.VideoTask(entry, "png", tmp_path / "out"))
    assert [job.precision for job in jobs] == ["exact"]


def test_fast_without_native_bf16_says_why_in_one_line(monkeypatch):
    from app.headless.track_run import precision_warning

    monkeypatch.setattr("model.engine.precision._cpu_native_bf16", lambda: False)
    assert precision_warning("exact", "cpu") is None
    assert precision_warning("auto", "cpu") is None
    warning = precision_warning("fast", "cpu")
    assert "no native bf16" in warning and "slower than float32" in warning
    monkeypatch.setattr("model.engine.precision._cpu_native_bf16", lambda: True)
    assert precision_warning("fast", "cpu") is None
