"""Value types of the `masklet` command line options, checked while the arguments are parsed.

Each function is an argparse `type=`: it turns the option's text into a value or raises
`argparse.ArgumentTypeError` with a one-line reason, so an absurd value (a negative step,
ten billion frames, a 16384 px model input) ends the run with exit code 2 before any file
is opened or any model is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.project.files import MAX_ID
from app.safety.limits import MAX_FRAMES, MAX_IMAGE_SIZE, MAX_OBJECTS

__all__ = [
    "PRECISIONS",
    "FrameRange",
    "add_find_options",
    "add_precision_option",
    "find_every",
    "find_threshold",
    "frame_range",
    "image_size",
    "object_ids",
    "phrase",
    "step",
]

# model.engine.precision's choices, repeated here so that parsing needs no torch import
# (a test checks that the two agree).
PRECISIONS = ("auto", "exact", "fast")
_PRECISION_HELP = (
    "auto (default): bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX) whose bf16 "
    "matmuls time faster than float32 (timed once at start), float32 elsewhere; "
    "exact: float32, the reference's results; fast: bf16, about twice as fast where the "
    "hardware's bf16 pays, and slower than float32 where it does not"
)

# The model's own rule (Sam2Config.with_image_size), checked here so it is a usage error.
_SIZE_MULTIPLE = 32

FrameRange = tuple[int, int | None]


def _whole_number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        # int() also refuses numbers of more than 4300 digits; its own message names neither.
        raise argparse.ArgumentTypeError(f"{what}: expected a whole number, got {text!r}") from None


def frame_range(text: str) -> FrameRange:
    """`A:B` (end exclusive; either side may be empty) -> (start, stop or None)."""
    first, sep, last = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected A:B (e.g. 10:50), got {text!r}")
    start = _whole_number(first, "start frame") if first.strip() else 0
    stop = _whole_number(last, "end frame") if last.strip() else None
    for value in (start, stop):
        if value is not None and not 0 <= value <= MAX_FRAMES:
            raise argparse.ArgumentTypeError(f"frame {value} is outside 0-{MAX_FRAMES} in {text!r}")
    if stop is not None and stop <= start:
        raise argparse.ArgumentTypeError(f"the range {text!r} is empty (the end is exclusive)")
    return start, stop


def step(text: str) -> int:
    """Every N-th frame: 1 <= N <= MAX_FRAMES."""
    value = _whole_number(text, "step")
    if not 1 <= value <= MAX_FRAMES:
        raise argparse.ArgumentTypeError(f"expected a step in 1-{MAX_FRAMES}, got {value}")
    return value


def object_ids(text: str) -> tuple[int, ...]:
    """`1,3,7` -> (1, 3, 7): at most MAX_OBJECTS ids, each in 0-MAX_ID."""
    parts = text.split(",")
    if len(parts) > MAX_OBJECTS:
        raise argparse.ArgumentTypeError(f"{len(parts)} ids, over the limit of {MAX_OBJECTS}")
    ids = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected ids like 1,3, got {text!r}") from None
        if not 0 <= value <= MAX_ID:
            raise argparse.ArgumentTypeError(f"object id {value} is outside 0-{MAX_ID}")
        ids.append(value)
    return tuple(ids)


def image_size(text: str) -> int:
    """Model input size: a multiple of 32 up to MAX_IMAGE_SIZE."""
    value = _whole_number(text, "image size")
    if not 0 < value <= MAX_IMAGE_SIZE or value % _SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"expected a multiple of {_SIZE_MULTIPLE} up to {MAX_IMAGE_SIZE}, got {value}"
        )
    return value


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """`--precision auto|exact|fast`, the same for `masklet track` and `masklet batch`."""
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=_PRECISION_HELP)


def phrase(text: str) -> str:
    """A phrase to find (`app.headless.phrases.check_phrase`)."""
    from app.headless.phrases import check_phrase

    try:
        return check_phrase(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: {_shown(text)}") from None


def _shown(text: str, limit: int = 40) -> str:
    """A phrase as an error line can show it: escaped, cut to `limit` characters."""
    shown = ascii(text[:limit])
    return shown + (f"... ({len(text):,} characters)" if len(text) > limit else "")


def find_every(text: str) -> int:
    """Frames between two finds: 1 <= N <= MAX_FRAMES."""
    value = _whole_number(text, "find-every")
    if not 1 <= value <= MAX_FRAMES:
        raise argparse.ArgumentTypeError(
            f"expected a number of frames in 1-{MAX_FRAMES}, got {value}"
        )
    return value


def find_threshold(text: str) -> float:
    """The finder's score threshold, in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def add_find_options(parser: argparse.ArgumentParser, *, phrases: bool = True) -> None:
    """`--find PHRASE` (repeatable), `--find-every N`, `--find-threshold T` and
    `--finder-checkpoint`, for `masklet track` (and, without `--find`, `masklet batch`)."""
    if phrases:
        parser.add_argument(
            "--find",
            action="append",
            type=phrase,
            metavar="PHRASE",
            help="find every instance of PHRASE with SAM 3's finder (repeatable); "
            "objects are named 'PHRASE 1', 'PHRASE 2', ...",
        )
    parser.add_argument(
        "--find-every",
        type=find_every,
        metavar="N",
        help="also find every N frames while tracking (default: on the first frame only)",
    )
    parser.add_argument(
        "--find-threshold",
        type=find_threshold,
        default=0.5,
        metavar="T",
        help="keep instances whose finder score is over T (default 0.5)",
    )
    parser.add_argument(
        "--finder-checkpoint", type=Path, metavar="SAM3.PT", help="SAM 3 checkpoint (sam3.pt)"
    )


def track_usage_problem(args: argparse.Namespace) -> str | None:
    """What `masklet track`'s options lack or combine wrongly, as a usage error; else None."""
    if args.prompts is None and not args.find:
        return "give --prompts P.json, --find PHRASE, or both"
    if not args.find and args.find_every is not None:
        return "--find-every needs --find PHRASE"
    return None
