"""Reading user files safely: only regular files, only up to a size limit, strict JSON.

`read_regular_file` opens without blocking (a FIFO or a device would otherwise hang the
open or the read forever), refuses anything that is not a regular file after opening it
(so a symlink to `/dev/zero` is caught by what it points to), and checks the size before
reading. Errors are `OSError`s whose `strerror` is a plain sentence, so the callers' usual
"cannot read PATH: REASON" messages stay one line.

`parse_json` refuses what Python's json module accepts but JSON does not (NaN, Infinity)
and what would only serve to exhaust the interpreter (integers of hundreds of digits,
nesting deep enough to overflow the stack), with a one-line `JsonError`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from app.safety.limits import MAX_FRAME_PIXELS

__all__ = [
    "ImageTooLarge",
    "JsonError",
    "check_regular_file",
    "open_image_header",
    "parse_json",
    "read_regular_file",
]

_MAX_INT_DIGITS = 20  # int64 is 19 digits; larger ids, frames or sizes mean nothing here
_MAX_DEPTH = 64  # our own files nest 6 levels deep at most


class ImageTooLarge(ValueError):
    """PIL itself refused an image header as a decompression bomb (one-line message)."""


class JsonError(ValueError):
    """The bytes are not the kind of JSON document our readers accept (one-line message)."""


def _size_text(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def _refuse(path: Path, reason: str, code: int = errno.EINVAL) -> OSError:
    return OSError(code, reason, str(path))


def _check_stat(path: Path, info: os.stat_result, max_bytes: int) -> int:
    if stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "is a folder, not a file", errno.EISDIR)
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "is not a regular file (a pipe, device or socket)")
    if info.st_size > max_bytes:
        raise _refuse(
            path,
            f"is {_size_text(info.st_size)}, over the {_size_text(max_bytes)} limit",
            errno.EFBIG,
        )
    return info.st_size


def check_regular_file(path: str | os.PathLike[str], *, max_bytes: int) -> int:
    """Return the size of `path` if it is a regular file of at most `max_bytes`, else raise
    OSError. Symlinks are followed: what counts is the file they lead to."""
    path = Path(path)
    return _check_stat(path, os.stat(path), max_bytes)


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of `path`, refusing non-regular files and files over `max_bytes`.

    The check is made on the opened descriptor, so a file swapped for a FIFO between a
    check and the open can't block us either."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise _refuse(path, "is a folder, not a file", errno.EISDIR) from None
    try:
        _check_stat(path, os.fstat(fd), max_bytes)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since fstat
    if len(data) > max_bytes:
        raise _refuse(path, f"is over the {_size_text(max_bytes)} limit", errno.EFBIG)
    return data


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise JsonError(f"an integer of {len(text)} digits is too large")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonError(f"the number {text[:24]} is too large")
    return value


def _parse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a valid JSON number")


def _check_depth(value: Any) -> None:
    """Iterative, so a hostile document can't overflow the stack of a recursive check."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise JsonError(f"nested more than {_MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def parse_json(raw: bytes) -> Any:
    """Parse UTF-8 JSON (a leading byte-order mark is accepted) with the limits above.

    Raises JsonError with a one-line reason: bad encoding, bad syntax, NaN/Infinity,
    huge integers or floats, or excessive nesting."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})") from None
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except JsonError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise JsonError(f"nested more than {_MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # int() digit limits and the like
        raise JsonError(f"not valid JSON ({str(exc).splitlines()[0]})") from None
    _check_depth(value)
    return value


def open_image_header(data: bytes, *, formats: list[str]) -> Image.Image:
    """PIL's lazy view of an image in `formats`: the header is read, the pixels are not, so
    the caller checks the declared size before anything is decoded.

    PIL refuses images far over our own pixel limit outright; that is an ImageTooLarge in
    `app.safety.limits.check_frame_size`'s words. Other failures come as PIL raises them."""
    try:
        with warnings.catch_warnings():
            # Our own pixel limit, checked by the caller, is far under PIL's warning threshold.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            f"size is over the limit of {MAX_FRAME_PIXELS // 1_000_000} megapixels per frame"
        ) from None
