"""Value types of the `masklet` command line options, checked while the arguments are parsed.

Each function is an argparse `type=`: it turns the option's text into a value or raises
`argparse.ArgumentTypeError` with a one-line reason, so an absurd value (a negative step,
ten billion frames, a 16384 px model input) ends the run with exit code 2 before any file
is opened or any model is built.
"""

from __future__ import annotations

import argparse

from app.project.files import MAX_ID
from app.safety.limits import MAX_FRAMES, MAX_IMAGE_SIZE, MAX_OBJECTS

__all__ = [
    "PRECISIONS",
    "FrameRange",
    "add_precision_option",
    "frame_range",
    "image_size",
    "object_ids",
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
