"""File helpers shared by the exporters: atomic outputs and frame/image naming."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from app.safety.atomic import (
    atomic_write_bytes,
    fsync_dir,
    new_temp_file,
    sweep_stale_temporaries,
    temp_name,
    user_path_error,
)

__all__ = [
    "atomic_folder",
    "atomic_output",
    "frame_file_name",
    "frame_stem",
    "save_image",
    "save_png_bytes",
    "write_frame_image",
]


_WRITE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, name)
)


def frame_stem(frame: int) -> str:
    """File stem for a frame: the video frame index, zero padded (DAVIS style, `00042`)."""
    return f"{frame:05d}"


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds.

    For writers that need a real file to stream into (JSON, MP4); small in-memory
    payloads go through `app.safety.atomic.atomic_write_bytes` instead. The temporary is named
    as `app.safety.atomic` names them (swept after a kill), gets the umask's mode like any other
    new file, and an OS error raised in the block names `path`, not the temporary.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = new_temp_file(path)
        os.close(fd)
    except OSError as exc:
        raise user_path_error(exc, path) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        mapped = _for_user(exc, tmp, path)
        if mapped is not exc:
            raise mapped from None
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_folder(path: Path, is_replaceable: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield a temporary sibling folder; it becomes `path` only if the block succeeds.

    A kill at any moment leaves `path` as it was (nothing, or an earlier complete folder)
    plus at most a temporary of our naming, swept by the next run. An existing `path` is
    replaced only if `is_replaceable(path)` says it holds nothing but an earlier export of
    ours (checked before any work and again before the swap); anything else, a symlink
    included, is refused with a ValueError and left alone.
    """
    _check_replaceable(path, is_replaceable)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(path.parent)
        tmp = path.parent / temp_name(path.name)
        tmp.mkdir()
    except OSError as exc:
        raise user_path_error(exc, path) from None
    try:
        yield tmp
        _check_replaceable(path, is_replaceable)
        _swap_into_place(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        mapped = _for_user(exc, tmp, path)
        if mapped is not exc:
            raise mapped from None
        raise


def _check_replaceable(path: Path, is_replaceable: Callable[[Path], bool]) -> None:
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; choose a real folder to export into")
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder")
    if not is_replaceable(path):
        raise ValueError(
            f"{path} holds files Masklet did not write; choose an empty folder or a new name"
        )


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Rename `tmp` to `path`; an earlier export there is moved aside first, then deleted."""
    fsync_dir(tmp)
    if not path.exists():
        os.rename(tmp, path)
    else:
        aside = path.parent / temp_name(path.name)
        os.rename(path, aside)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(aside, path)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    fsync_dir(path.parent)


def _for_user(exc: BaseException, tmp: Path, path: Path) -> BaseException:
    """`exc`, naming the user's output instead of our temporary (or a path inside it).

    Write errors often carry no file name at all; a disk-full kind is then put on `path`.
    Errors about other files (a source image, say) keep their own name."""
    if not isinstance(exc, OSError):
        return exc
    if exc.filename is None:
        return user_path_error(exc, path) if exc.errno in _WRITE_ERRNOS else exc
    name = Path(os.fspath(exc.filename))
    if name == tmp:
        return user_path_error(exc, path)
    if name.is_relative_to(tmp):
        return user_path_error(exc, path / name.relative_to(tmp))
    return exc


def save_png_bytes(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def save_image(path: Path, rgb: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB frame as JPEG or PNG, chosen by the suffix."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if path.suffix.lower() == ".png":
        save_png_bytes(path, image)
        return
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


IMAGES_DIR = "JPEGImages"


def frame_file_name(video_name: str, frame: int, ext: str) -> str:
    """Relative name of a frame image (`<video>/00042.jpg`), as COCO and YouTube-VIS list it."""
    return f"{video_name}/{frame_stem(frame)}.{ext}"


def write_frame_image(root: Path, rel_name: str, rgb: np.ndarray, *, quality: int) -> Path:
    """Write a source frame under `root/JPEGImages/<rel_name>`; returns the path."""
    path = root / IMAGES_DIR / rel_name
    save_image(path, rgb, quality=quality)
    return path
