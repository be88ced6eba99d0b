"""`masklet` command line.

    masklet [VIDEO]                     start the app (optionally opening VIDEO)
    masklet track VIDEO --prompts P.json --checkpoint CKPT --format F --out PATH
    masklet track VIDEO --find PHRASE --finder-checkpoint sam3.pt --checkpoint CKPT ...
    masklet export PROJECT.masklet --format F --out PATH
    masklet batch MANIFEST.jsonl --checkpoint CKPT --out DIR    (many videos, on Ray)

`track` runs the tracker headless and exports the result; `export` writes the masks of
a saved project; `batch` tracks every video of a manifest on Ray (app.headless.batch). Bad input
ends with exit code 1 (2 for bad arguments) and one line on stderr, never a traceback; set
MASKLET_DEBUG=1 to see one anyway. (`batch` reports a bad manifest one line per bad entry.)

Whatever can be refused without the model (option values, non-regular inputs, outputs
that would replace an input or cannot be written, prompts that do not fit the video or
the export) is refused before the model loads (see app.headless.preflight, app.export.output_guard).
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

from app.headless.eta import ESTIMATING, RecentRate
from app.safety.errors import describe_error
from model.kernels.allocator import retain_freed_memory
from model.kernels.threads import configure_threads, prepare_environment

__all__ = ["ProgressBar", "main"]

_DEBUG_HINT = " (MASKLET_DEBUG=1 shows details)"

_SUBCOMMANDS = ("track", "export", "batch")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and no `sys.exit` from inside."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


class ProgressBar:
    """Plain-text progress on a stream, redrawn in place with `\\r`; `progress(done, total)`.

    After the first step it adds the rate and the time left, from `clock` (seconds), both
    over the recent steps (`app.headless.eta.RecentRate`): tracking slows while the memory bank
    fills, and a rate since the start would make the ETA climb. Until the rate is measured
    on steps that cost what the rest will (not the prompted frame, not the warm-up), it
    says "estimating…" instead of a guess.
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
        self._recent = RecentRate()

    def __call__(self, done: int, total: int) -> None:
        total = max(total, 1)
        filled = min(self._width, self._width * done // total)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}{self._rate(done, total)}")
        self._stream.flush()
        self._drawn = True

    def _rate(self, done: int, total: int) -> str:
        self._recent.update(done, self._clock())
        rate = self._recent.rate
        if rate <= 0:
            return f"  {ESTIMATING}" if done > 0 and done < total else ""
        left = round(self._recent.eta(total))
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
    from app.export import FORMATS
    from app.headless import cli_args

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
    from app.headless import cli_args

    parser = _Parser(prog=f"masklet {command}")
    if command == "batch":
        from app.headless.batch.command import add_arguments

        add_arguments(parser)
        return parser
    if command == "track":
        parser.description = (
            "Track the objects of a prompts file, and/or every instance of phrases SAM 3's "
            "finder finds, through a video, headless."
        )
        parser.add_argument("video", type=Path, help="video file or image folder")
        parser.add_argument("--prompts", type=Path, help="prompts JSON file")
        cli_args.add_find_options(parser)
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
        cli_args.add_precision_option(parser)
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
    from app.export.output_guard import check_outputs, export_outputs
    from app.headless.preflight import check_project_path, check_video_path
    from app.project.files import ProjectError, load_project, mask_folder
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
    loads, tracks, and the export writes (app.headless.track_run, shared with `masklet batch`)."""
    from app.headless.finding import spec_from_options
    from app.headless.track_run import TrackJob, check_model_args, precision_warning, run_track

    find = spec_from_options(
        args.find, args.find_every, args.find_threshold, args.finder_checkpoint
    )
    job = TrackJob(
        video=args.video,
        fmt=args.format,
        out=args.out,
        prompts=args.prompts,
        direction=args.direction,
        device=args.device,
        precision=args.precision,
        options=_export_options(args),
        extra_inputs=tuple(check_model_args(args.checkpoint, args.image_size, args.device)),
        find=find,
    )
    warning = precision_warning(args.precision, args.device)
    if warning:
        print(f"masklet track: note: {warning}", file=sys.stderr)
    tracking = ProgressBar("tracking")
    exporting = ProgressBar(f"exporting {args.format}")
    try:
        result = run_track(
            job,
            lambda: _load_model_noted(args.checkpoint, args.image_size, args.device),
            get_finder=None if find is None else lambda: _load_finder_noted(find, args.device),
            track_progress=tracking,
            export_progress=_closing_first(tracking, exporting),
            note=lambda text: _note(tracking, text),
        )
    finally:
        tracking.close()
        exporting.close()
    print(f"wrote {result.out} ({result.frames_done} frames)", file=sys.stderr)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from app.headless.batch.command import run

    return run(args)


def _load_model_noted(checkpoint: str, image_size: int | None, device: str):
    with _transient_note("loading model…"):
        return _load_model(checkpoint, image_size, device)


def _load_finder_noted(find, device: str):
    from app.headless.finding import load_finder

    with _transient_note("Loading the finder…"):
        return load_finder(find.checkpoint, device)


def _note(bar: ProgressBar, text: str) -> None:
    """A line of its own, below the progress bar drawn so far (redrawn on its next step)."""
    bar.close()
    print(f"masklet track: {text}", file=sys.stderr)


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


def _load_model(checkpoint: str, image_size: int | None, device: str):
    """The one place the CLI loads a model (tests replace it to prove it is not reached)."""
    from app.headless.track_run import load_model

    return load_model(checkpoint, image_size, device)


def _track_usage_problem(args: argparse.Namespace) -> str | None:
    from app.headless.cli_args import track_usage_problem

    return track_usage_problem(args)


def _closing_first(done: ProgressBar, bar: ProgressBar):
    """`bar`, ending `done`'s line before its first redraw."""

    def progress(count: int, total: int) -> None:
        done.close()
        bar(count, total)

    return progress


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
    if argv[0] == "track" and (problem := _track_usage_problem(args)):
        print(f"masklet track: error: {problem}", file=sys.stderr)
        return 2
    handler = {"track": _cmd_track, "export": _cmd_export, "batch": _cmd_batch}[argv[0]]
    if argv[0] == "track":
        configure_threads()
    _silence_native_logs()
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("masklet: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("MASKLET_DEBUG"):
            raise
        print(f"masklet {argv[0]}: {describe_error(exc, hint=_DEBUG_HINT)}", file=sys.stderr)
        return 1 if isinstance(exc, (ValueError, OSError)) else 3


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `masklet` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before anything loads torch: OpenMP reads its wait policy once, when it loads.
    prepare_environment()
    retain_freed_memory()  # before any thread allocates (see model/kernels/allocator.py)
    if argv and argv[0] in _SUBCOMMANDS:
        return _run_subcommand(argv)
    parser = _Parser(
        prog="masklet",
        description="Interactive video segmentation",
        epilog="headless commands: 'masklet track --help', 'masklet export --help', "
        "'masklet batch --help'",
    )
    parser.add_argument("video", nargs="?", help="video file or image folder to open")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    from app.gui.main import run_app

    return run_app(args.video)


if __name__ == "__main__":
    sys.exit(main())
