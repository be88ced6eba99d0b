"""Checks that an export's outputs can be written and will not replace any of its inputs.

An export writes a file (COCO, YouTube-VIS, MP4) or a folder (PNG), plus optionally a
`JPEGImages/` folder next to the file. Before anything runs, every output is compared
with every input (video file or image folder, prompts file, checkpoint, project file and
its mask folder), with symlinks resolved and hard links caught by `os.path.samefile`:

- an output may not be an input (`--format mp4 --out clip.mp4` on clip.mp4);
- an output folder may not hold an input (DAVIS's `JPEGImages/<video>/00000.jpg` frames
  would be overwritten by `--images jpg` next to them);
- no output may lie inside an input folder (an image folder would gain frames, a mask
  folder foreign files).

Each refusal is a `ValueError` whose message is one line naming both paths.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.export.files import IMAGES_DIR

__all__ = ["Output", "check_outputs", "export_outputs"]


@dataclass(frozen=True)
class Output:
    path: Path
    is_folder: bool


def export_outputs(fmt: str, out: Path, *, images: bool) -> list[Output]:
    """What `app.export.export(source, fmt, out, ...)` may write."""
    if fmt == "png":
        return [Output(out, is_folder=True)]
    outputs = [Output(out, is_folder=False)]
    if images:
        outputs.append(Output(out.parent / IMAGES_DIR, is_folder=True))
    return outputs


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise ValueError unless every output is writable and disjoint from every input."""
    inputs = [Path(p) for p in inputs]
    for output in outputs:
        for source in inputs:
            _check_disjoint(output, source)
        _check_writable(output)


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _check_disjoint(output: Output, source: Path) -> None:
    out, src = output.path.resolve(), source.resolve()
    if out == src or _same_file(out, src):
        raise ValueError(f"refusing to write {output.path}: it is the input {source}")
    if output.is_folder and _inside(src, out):
        raise ValueError(f"refusing to write into {output.path}: it holds the input {source}")
    if src.is_dir() and _inside(out, src):
        raise ValueError(f"refusing to write {output.path}: it is inside the input folder {source}")


def _check_writable(output: Output) -> None:
    """The checks the export would otherwise make only after tracking a whole video."""
    path = output.path
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder check below says which
        mode = None
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and output.is_folder and not stat.S_ISDIR(mode):
        raise ValueError(f"{path} exists and is not a folder")
    if mode is not None and not output.is_folder:
        if stat.S_ISDIR(mode):
            raise ValueError(f"{path} is a folder; give a file path")
        if not stat.S_ISREG(mode):
            # Replacing /dev/null or a FIFO with our file would break the system, not export.
            raise ValueError(f"{path} exists and is not a regular file")
    folder = path if mode is not None and output.is_folder else path.parent
    _check_folder_writable(folder)


def _check_folder_writable(folder: Path) -> None:
    """`folder`, or the nearest part of it that exists, must be a writable folder."""
    existing = folder.absolute()
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write in {folder}: {existing} is not a folder")
    # access() also sees read-only mounts and ACLs, and is right for root, who may write anyway.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {folder}: {existing} is not writable")
