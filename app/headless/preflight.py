"""Checks a headless run makes before it loads a model or decodes a frame.

Whatever can be known from the paths, the prompts and the video's length alone (a video
path that is a FIFO, unknown `--objects`, a frame range past the end, too many objects
for a palette PNG) is refused here, so a mistake costs a second rather than a model load
and a tracked video. Every refusal is a `ValueError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.export import ExportOptions, ObjectMeta
from app.export.png import index_map
from app.export.source import selected_frames, selected_objects
from app.safety.limits import MAX_JSON_BYTES
from app.safety.safe_io import check_regular_file

__all__ = ["check_export_plan", "check_project_path", "check_video_path"]


def check_video_path(path: str | os.PathLike[str]) -> None:
    """A missing video is named before anything else is read; what kind of file it is
    (a FIFO or device is refused) is the video reader's check, shared with the app."""
    if not os.path.exists(path):
        raise ValueError(f"video not found: {path}")


def check_project_path(path: str | os.PathLike[str]) -> None:
    """A project must be a regular file within MAX_JSON_BYTES; a missing one is left to
    the loader, whose message for it the user already knows."""
    try:
        check_regular_file(path, max_bytes=MAX_JSON_BYTES)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{Path(path).name}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class _Plan:
    """The part of an `ExportSource` that frame and object selection look at."""

    num_frames: int
    objects: Sequence[ObjectMeta]


def check_export_plan(
    fmt: str, num_frames: int, objects: Sequence[ObjectMeta], options: ExportOptions
) -> None:
    """Raise ValueError if the export of these frames and objects would be refused later."""
    plan = _Plan(num_frames, objects)
    selected_frames(plan, options)
    chosen = selected_objects(plan, options)
    if fmt == "png":
        index_map(chosen)
