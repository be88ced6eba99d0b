"""One entry point for every export format, used by the GUI's export dialog and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.export.coco import write_coco
from app.export.overlay import write_overlay
from app.export.png import write_png
from app.export.source import (
    ExportCancelled,
    ExportOptions,
    ExportSource,
    FrameLoop,
    ObjectMeta,
    Progress,
    ShouldStop,
    selected_frames,
    selected_objects,
)
from app.export.ytvis import write_ytvis

__all__ = ["FORMATS", "ExportResult", "export"]

Writer = Callable[
    [ExportSource, Path, range, Sequence[ObjectMeta], ExportOptions, FrameLoop], list[Path]
]

# Format name -> (writer, whether `out` is a folder rather than a file).
_WRITERS: dict[str, tuple[Writer, bool]] = {
    "png": (write_png, True),
    "coco": (write_coco, False),
    "ytvis": (write_ytvis, False),
    "mp4": (write_overlay, False),
}
FORMATS = tuple(_WRITERS)


@dataclass(frozen=True)
class ExportResult:
    """What an export did: files written (empty list when cancelled before any) and frames done."""

    format: str
    out: Path
    paths: list[Path]
    frames_done: int
    frames_total: int
    cancelled: bool


def export(
    source: ExportSource,
    fmt: str,
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> ExportResult:
    """Export `source` as `fmt` ("png", "coco", "ytvis" or "mp4") to `out`.

    `out` is a folder for "png" and a file path otherwise. `progress(done, total)` is
    called once with 0 and after every frame; `should_stop()` is polled before every
    frame and cancels cleanly: nothing is left behind and any older output at `out` is
    untouched (every format builds under a temporary name and renames at the end).
    Raises ValueError for an unknown format, a bad frame range, unknown object ids, or a
    PNG folder `out` that holds files of anything but an earlier PNG export.
    """
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    options = options or ExportOptions()
    writer, is_folder = _WRITERS[fmt]
    out = Path(out)
    if is_folder and out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if not is_folder and out.is_dir():
        raise ValueError(f"{out} is a folder; give a file path for {fmt} export")
    frames = selected_frames(source, options)
    objects = selected_objects(source, options)
    loop = FrameLoop(len(frames), progress, should_stop)
    try:
        paths = writer(source, out, frames, objects, options, loop)
    except ExportCancelled:
        return ExportResult(fmt, out, [], loop.done, loop.total, cancelled=True)
    return ExportResult(fmt, out, paths, loop.done, loop.total, cancelled=False)
