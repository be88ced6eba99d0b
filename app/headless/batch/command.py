"""`masklet batch MANIFEST --checkpoint CKPT --out DIR [...]`: track many videos on Ray.

Checked before Ray starts or any model loads: the option values (at parse time), Ray being
installed, the manifest (every bad line reported, one line each), and that `--out` can be
written and neither is nor holds nor sits inside any input. Exit codes: 0 every video
finished, 1 bad input or at least one video failed (see `DIR/failures.jsonl`), 2 bad
arguments, 130 interrupted (the same command resumes).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from app.headless.batch.ledger import FAILURES_LOG
from app.headless.batch.manifest import ManifestError, load_manifest

__all__ = ["add_arguments", "run"]

_MAX_WORKERS = 4096
_MAX_GPUS_PER_WORKER = 64


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= _MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected 1-{_MAX_WORKERS} workers, got {value}")
    return value


def _gpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= _MAX_GPUS_PER_WORKER:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected 0-{_MAX_GPUS_PER_WORKER}, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from app.export import FORMATS
    from app.headless import cli_args

    parser.description = (
        "Track every video of a manifest (JSON Lines) on Ray, one model per worker; "
        "the same command again resumes."
    )
    parser.add_argument(
        "manifest", type=Path, help="JSON Lines: one {video, prompts and/or find} per line"
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="SAM 2 / 2.1 checkpoint (.pt), readable by every worker; 'random:VARIANT' "
        "builds an untrained model, for testing only",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder: DIR/<id>/")
    parser.add_argument("--format", default="png", choices=FORMATS, help="output format")
    parser.add_argument("--address", help="join this Ray cluster (default: start Ray here)")
    parser.add_argument(
        "--workers", type=_workers, metavar="N", help="model copies (default: one per GPU share)"
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=_gpus,
        default=0.0,
        metavar="G",
        help="GPUs per worker (0: CPU; 0.5: two workers share a GPU)",
    )
    parser.add_argument(
        "--image-size", type=cli_args.image_size, metavar="N", help="model input size"
    )
    cli_args.add_precision_option(parser)
    # Phrases come per video, from the manifest's `find`; --find-every is their default.
    cli_args.add_find_options(parser, phrases=False)


def _check_out(args: argparse.Namespace, entries) -> None:
    """`--out` must be writable and disjoint from the manifest, the checkpoint and each video."""
    from app.export.output_guard import Output, check_outputs
    from app.headless.finding import check_finder_file
    from app.headless.track_run import check_model_args

    inputs = [args.manifest]
    if any(e.find for e in entries) and args.finder_checkpoint is None:
        line = next(e.line for e in entries if e.find)
        raise ValueError(
            f"{args.manifest.name} line {line} has 'find': give --finder-checkpoint sam3.pt"
        )
    if not args.address:
        # On a cluster the checkpoint is the workers' path: they report it if it is bad.
        inputs += check_model_args(args.checkpoint, args.image_size, "cpu")
        if args.finder_checkpoint is not None:
            check_finder_file(args.finder_checkpoint)
            inputs.append(args.finder_checkpoint)
    for entry in entries:
        inputs += [p for p in (entry.video, entry.prompts, entry.annotations) if p is not None]
    check_outputs([Output(args.out, is_folder=True)], inputs)


def run(args: argparse.Namespace) -> int:
    """Run the batch; returns the exit code. Bad input raises ValueError (one line)."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError("masklet batch needs Ray: pip install 'masklet[cluster]'")
    try:
        entries = load_manifest(args.manifest)
    except ManifestError as exc:
        for problem in exc.problems:
            print(f"masklet batch: error: {problem}", file=sys.stderr)
        if exc.total > len(exc.problems):
            more = exc.total - len(exc.problems)
            print(f"masklet batch: error: and {more} more bad lines", file=sys.stderr)
        return 1
    _check_out(args, entries)
    with _out_lock(args.out):
        return _run_locked(args, entries)


def _out_lock(out: Path):
    """One batch per `--out`: its lock, or ValueError naming the batch that holds it."""
    from app.project.lock import BATCH_LOCK_NAME, LockHeld, ProjectLock

    try:
        out.mkdir(parents=True, exist_ok=True)
        return ProjectLock.acquire(out / BATCH_LOCK_NAME)
    except LockHeld as held:
        who = held.holder.describe() if held.holder is not None else "another process"
        raise ValueError(f"{out} is in use by another masklet batch ({who})") from None
    except OSError as exc:
        raise ValueError(f"cannot lock {out}: {exc.strerror or exc}") from None


def _run_locked(args: argparse.Namespace, entries) -> int:
    from app.headless.batch.scheduler import BatchSettings, run_batch

    settings = BatchSettings(
        checkpoint=args.checkpoint,
        image_size=args.image_size,
        precision=args.precision,
        fmt=args.format,
        out=args.out,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        address=args.address,
        finder_checkpoint=args.finder_checkpoint,
        find_threshold=args.find_threshold,
        find_every=args.find_every,
    )
    summary = run_batch(entries, settings)
    text = (
        f"batch: {summary.finished} finished, {summary.skipped} skipped, "
        f"{summary.failed} failed of {summary.total}"
    )
    if summary.failed:
        text += f" (see {args.out / FAILURES_LOG})"
    if summary.interrupted:
        print(f"{text}; interrupted: run the same command to resume", file=sys.stderr)
        return 130
    print(text, file=sys.stderr)
    return 1 if summary.failed else 0
