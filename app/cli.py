"""`masklet` command line.

    masklet [VIDEO]                     start the app (optionally opening VIDEO)
    masklet track VIDEO --prompts P.json --checkpoint CKPT --format F --out PATH
    masklet export PROJECT.masklet --format F --out PATH

`track` runs the tracker headless and exports the result; `export` writes the masks of
a saved project. Bad input ends with exit code 1 (2 for bad arguments) and one line on
stderr, never a traceback; set MASKLET_DEBUG=1 to see one anyway.

Whatever can be refused without the model (option values, non-regular inputs, outputs
that would replace an input or cannot be written, prompts that do not fit the video or
the export) is refused before the model loads (see app.preflight, app.output_guard).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["ProgressBar", "main"]

RANDOM_PREFIX = "random:"
_SUBCOMMANDS = ("track", "export")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and no `sys.exit` from inside."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


class ProgressBar:
    """Plain-text progress on a stream, redrawn in place with `\\r`; `progress(done, total)`.

    After the first step it adds the rate and the time left, from `clock` (seconds).
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        width: int = 30,
        *,
        unit: str = "frames",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._unit = unit
        self._clock = clock
        self._drawn = False
        self._started: tuple[float, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        total = max(total, 1)
        filled = min(self._width, self._width * done // total)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}{self._rate(done, total)}")
        self._stream.flush()
        self._drawn = True

    def _rate(self, done: int, total: int) -> str:
        now = self._clock()
        if self._started is None:
            self._started = (now, done)
        t0, done0 = self._started
        if done <= done0 or now <= t0:
            return ""
        rate = (done - done0) / (now - t0)
        left = round(max(total - done, 0) / rate)
        minutes, seconds = divmod(left, 60)
        return f"  {rate:.2f} {self._unit}/s  ETA {minutes // 60}:{minutes % 60:02d}:{seconds:02d}"

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def _add_export_options(
    parser: argparse.ArgumentParser, frames_help: str = "frame range, end exclusive (e.g. 10:50)"
) -> None:
    from app import cli_args
    from app.export import FORMATS

    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument("--out", required=True, type=Path, help="output folder (png) or file")
    parser.add_argument("--frames", type=cli_args.frame_range, metavar="A:B", help=frames_help)
    parser.add_argument(
        "--step", type=cli_args.step, default=1, metavar="N", help="every N-th frame"
    )
    parser.add_argument(
        "--objects",
        type=cli_args.object_ids,
        metavar="IDS",
        help="comma-separated object ids (e.g. 1,3)",
    )
    parser.add_argument("--images", choices=("jpg", "png"), help="also write the source frames")
    parser.add_argument("--polygons", action="store_true", help="COCO: lossy polygons, not RLE")
    parser.add_argument(
        "--binary-masks", action="store_true", help="png: also one black/white PNG per object"
    )


def _build_parser(command: str) -> argparse.ArgumentParser:
    from app import cli_args

    parser = _Parser(prog=f"masklet {command}")
    if command == "track":
        parser.description = "Track the objects of a prompts file through a video, headless."
        parser.add_argument("video", type=Path, help="video file or image folder")
        parser.add_argument("--prompts", required=True, type=Path, help="prompts JSON file")
        parser.add_argument(
            "--checkpoint",
            required=True,
            help="SAM 2 / 2.1 checkpoint (.pt); 'random:VARIANT' (e.g. random:sam2.1-tiny) "
            "builds an untrained model, for testing only",
        )
        parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"))
        parser.add_argument(
            "--direction", default="forward", choices=("forward", "backward", "both")
        )
        parser.add_argument(
            "--image-size", type=cli_args.image_size, metavar="N", help="model input size"
        )
        _add_export_options(
            parser,
            "frames to track and export, end exclusive (e.g. 0:20): tracking runs from the "
            "prompted frames up to frame B-1 (backward: down to A) and no further",
        )
        return parser
    parser.description = "Export the masks of a saved project."
    parser.add_argument("project", type=Path, help="project file (.masklet)")
    _add_export_options(parser)
    return parser


def _export_options(args: argparse.Namespace):
    from app.export import ExportOptions

    start, stop = args.frames or (0, None)
    return ExportOptions(
        start=start,
        stop=stop,
        step=args.step,
        object_ids=args.objects,
        images=args.images,
        polygons=args.polygons,
        binary_masks=args.binary_masks,
    )


def _run_export(source, args: argparse.Namespace, options) -> None:
    from app.export import export

    bar = ProgressBar(f"exporting {args.format}")
    try:
        result = export(source, args.format, args.out, options, progress=bar)
    finally:
        bar.close()
    print(f"wrote {result.out} ({result.frames_done} frames)", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> int:
    from app.export import StoreSource
    from app.output_guard import check_outputs, export_outputs
    from app.preflight import check_project_path, check_video_path
    from app.project import ProjectError, load_project, mask_folder
    from app.video import open_video

    options = _export_options(args)
    check_project_path(args.project)
    project, store = load_project(args.project)
    check_video_path(project.video_path)
    inputs = [args.project, mask_folder(args.project), Path(project.video_path)]
    check_outputs(export_outputs(args.format, args.out, images=bool(args.images)), inputs)
    with open_video(project.video_path) as reader:
        if len(reader) != project.num_frames or tuple(reader.size) != tuple(project.video_size):
            raise ProjectError(
                f"{args.project.name}: the video {project.video_path} no longer matches the "
                f"project ({len(reader)} frames of {tuple(reader.size)}, expected "
                f"{project.num_frames} of {tuple(project.video_size)})"
            )
        _run_export(StoreSource.from_project(project, store, reader), args, options)
    return 0


def _cmd_track(args: argparse.Namespace) -> int:
    """Everything that needs no model is checked first, cheapest first; then the model
    loads, tracks, and the export writes."""
    from app.export import ObjectMeta, StoreSource
    from app.output_guard import check_outputs, export_outputs
    from app.preflight import check_export_plan, check_video_path
    from app.prompts_file import PromptsError, load_prompts
    from app.video import open_video

    options = _export_options(args)
    check_video_path(args.video)
    inputs = [args.video, args.prompts, *_check_model_args(args)]
    check_outputs(export_outputs(args.format, args.out, images=bool(args.images)), inputs)
    prompts = load_prompts(args.prompts)
    objects = [ObjectMeta(o.obj_id, o.name, o.category) for o in prompts.objects]
    with open_video(args.video) as reader:
        try:
            prompts.check_video(len(reader), tuple(reader.size))
        except PromptsError as exc:
            raise PromptsError(f"prompts file {args.prompts}: {exc}") from None
        check_export_plan(args.format, len(reader), objects, options)
        with _transient_note("loading model…"):
            model = _load_model(args.checkpoint, args.image_size, args.device)
        store = _track(model, reader, prompts, args)
        source = StoreSource(name=args.video.stem, reader=reader, store=store, objects=objects)
        _run_export(source, args, options)
    return 0


@contextlib.contextmanager
def _transient_note(text: str, stream: TextIO | None = None) -> Iterator[None]:
    """`text` on a terminal while the block runs, erased after: loading a model takes
    seconds to a minute of silence otherwise. Not written when stderr is no terminal, so
    a refusal stays the one line scripts read."""
    stream = stream if stream is not None else sys.stderr
    shown = stream.isatty()
    if shown:
        stream.write(text)
        stream.flush()
    try:
        yield
    finally:
        if shown:
            stream.write("\r" + " " * len(text) + "\r")
            stream.flush()


def _check_model_args(args: argparse.Namespace) -> list[Path]:
    """Refuse a checkpoint or device that cannot work, without building anything;
    returns the checkpoint file, an input the outputs must not replace (none for random:)."""
    import torch

    from model.checkpoint import check_checkpoint_file
    from model.config import get_config

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    if args.device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: no MPS device is available")
    if args.checkpoint.startswith(RANDOM_PREFIX):
        get_config(args.checkpoint[len(RANDOM_PREFIX) :], image_size=args.image_size)
        return []
    check_checkpoint_file(args.checkpoint)
    return [Path(args.checkpoint)]


def _load_model(checkpoint: str, image_size: int | None, device: str):
    import torch

    from model.checkpoint import load_model

    if not checkpoint.startswith(RANDOM_PREFIX):
        try:
            return load_model(checkpoint, image_size=image_size, device=device)
        except (KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            # torch's unpickler fails on some garbage files with bare lookup errors.
            raise ValueError(
                f"{Path(checkpoint).name}: not a PyTorch checkpoint ({type(exc).__name__})"
            ) from None
    from model.build import build_model
    from model.config import get_config

    torch.manual_seed(0)
    cfg = get_config(checkpoint[len(RANDOM_PREFIX) :], image_size=image_size)
    return build_model(cfg).to(device)


def _tracking_passes(prompts, num_frames: int, direction: str, frames) -> list[tuple[str, int]]:
    """(direction, frames it visits) per propagation pass, bounded by `--frames A:B`:
    forward from the first keyframe up to B-1, backward from the last one down to A."""
    keys = [p.frame for obj in prompts.objects for p in obj.prompts]
    start, stop = frames or (0, None)
    stop = num_frames if stop is None else min(stop, num_frames)
    passes = []
    if direction in ("forward", "both"):
        passes.append(("forward", stop - min(keys)))
    if direction in ("backward", "both"):
        passes.append(("backward", max(keys) - start + 1))
    return [(d, n) for d, n in passes if n > 0]


def _track(model, reader, prompts, args: argparse.Namespace):
    """Prompt every object, propagate within `--frames`, and collect the masks."""
    from app.mask_store import MaskStore
    from model.session import Prompt, TrackingSession

    store = MaskStore(tuple(reader.size), num_frames=len(reader))
    session = TrackingSession(model, reader, device=args.device)
    for obj in prompts.objects:
        for p in obj.prompts:
            prompt = Prompt(points=p.points, labels=p.labels, box=p.box)
            _record(store, p.frame, session.add_prompt(p.frame, obj.obj_id, prompt))
    passes = _tracking_passes(prompts, len(reader), args.direction, args.frames)
    total, done = sum(n for _, n in passes), 0
    bar = ProgressBar("tracking")
    bar(0, total)
    try:
        for direction, count in passes:
            # "full" visits every frame from the first (or last) keyframe, which is what a
            # fresh headless run wants; frames are computed lazily, so stopping after
            # `count` results computes nothing past the range.
            results = session.propagate(direction=direction, mode="full")
            with contextlib.closing(results):
                for _, frame_result in zip(range(count), results, strict=False):
                    for result in frame_result.objects.values():
                        _record(store, frame_result.frame, result)
                    done += 1
                    bar(done, total)
    finally:
        bar.close()
    return store


def _record(store, frame: int, result) -> None:
    """Store one object's mask; absent when the model says so or the mask is empty."""
    present = bool(result.present and result.mask.any())
    store.set(frame, result.obj_id, result.mask if present else None, present=present)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """Parsed arguments, or the exit code when parsing ended the run (error or --help)."""
    try:
        return parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:
        return int(exc.code or 0)


def _silence_native_logs() -> None:
    """OpenCV's C++ code prints its own warnings about a damaged image ("IHDR chunk shall
    be first") before our reader turns the failure into the one line the user reads."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _run_subcommand(argv: list[str]) -> int:
    args = _parse(_build_parser(argv[0]), argv[1:])
    if isinstance(args, int):
        return args
    handler = _cmd_track if argv[0] == "track" else _cmd_export
    _silence_native_logs()
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("masklet: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("MASKLET_DEBUG"):
            raise
        print(f"masklet {argv[0]}: {_describe(exc)}", file=sys.stderr)
        return 1 if isinstance(exc, (ValueError, OSError)) else 3


def _describe(exc: Exception) -> str:
    """One line for the user: bad input is an "error", anything else an "internal error"."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, (ValueError, OSError)):
        return f"error: {line}"
    return f"internal error ({type(exc).__name__}): {line} (MASKLET_DEBUG=1 shows details)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `masklet` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _SUBCOMMANDS:
        return _run_subcommand(argv)
    parser = _Parser(
        prog="masklet",
        description="Interactive video segmentation",
        epilog="headless commands: 'masklet track --help', 'masklet export --help'",
    )
    parser.add_argument("video", nargs="?", help="video file or image folder to open")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    from app.gui.main import run_app

    return run_app(args.video)


if __name__ == "__main__":
    sys.exit(main())
