"""Atomic file writes: a reader sees either the old file or the new one, never a mix.

The data goes to a temporary file in the destination's directory (so the final
`os.replace` is a same-filesystem rename, which POSIX and Windows make atomic), is
flushed and fsynced, then renamed over the destination. The directory is fsynced
afterwards where the platform allows it, so the rename itself survives a power cut.
On any failure the destination is untouched and the temporary file is removed.

A kill -9 between creating the temporary and renaming it leaves the temporary behind.
Temporaries are therefore named recognisably, `.NAME.masklet-tmp-<pid>-<random>`, and the
next write into the same folder removes those whose owning process is gone
(`sweep_stale_temporaries`). Nothing else is ever removed: a name must match that pattern
exactly and its pid must be dead.

New files get the usual mode (0666 less the umask), a replaced file keeps its mode, and an
OS error names the user's file, never our temporary.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "is_temporary_name",
    "new_temp_file",
    "sweep_stale_temporaries",
    "temp_name",
    "user_path_error",
]

_TMP_TAG = ".masklet-tmp-"
_TMP_RE = re.compile(r"^\..*\.masklet-tmp-(\d{1,10})-[0-9a-f]{8}$", re.DOTALL)
_NAME_KEEP = 180  # of the final name inside a temp name: stays under NAME_MAX (255)
_SWEEP_EVERY_S = 10.0  # one scan per folder per this many seconds, not one per file written
_last_sweep: dict[str, float] = {}


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry table to disk; a no-op where directories can't be opened."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # Some filesystems (network mounts, tmpfs variants) refuse fsync on directories.
        pass
    finally:
        os.close(fd)


def temp_name(final_name: str) -> str:
    """A hidden sibling name for building `final_name`, recognisable as ours and as this pid's."""
    return f".{final_name[:_NAME_KEEP]}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"


def is_temporary_name(name: str) -> bool:
    return _TMP_RE.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        return True  # never sweep there rather than guess
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: alive, owned by someone else
    return True


def _remove_stale(entry: os.DirEntry) -> None:
    with contextlib.suppress(OSError):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)  # a file, or a link itself, never what it points to


def sweep_stale_temporaries(directory: str | os.PathLike[str], *, force: bool = True) -> None:
    """Remove our temporaries in `directory` whose owning process has died (kill -9 litter).

    With `force=False` a folder is scanned at most every few seconds per process, so
    writing many files into one folder stays linear."""
    key = os.path.abspath(directory)
    now = time.monotonic()
    if not force and now - _last_sweep.get(key, float("-inf")) < _SWEEP_EVERY_S:
        return
    _last_sweep[key] = now
    try:
        with os.scandir(key) as entries:
            stale = [e for e in entries if _is_stale(e.name)]
    except OSError:
        return  # an unreadable folder: the write itself will report the problem
    for entry in stale:
        _remove_stale(entry)


def _is_stale(name: str) -> bool:
    match = _TMP_RE.match(name)
    return match is not None and not _pid_alive(int(match.group(1)))


def user_path_error(exc: OSError, target: str | os.PathLike[str]) -> OSError:
    """The same error, naming the user's `target` instead of our temporary (or nothing)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OSError(exc.errno or errno.EIO, reason, str(target))


def new_temp_file(target: Path) -> tuple[int, Path]:
    """Create a temporary sibling of `target` (mode: 0666 less the umask); (fd, path)."""
    directory = target.parent if str(target.parent) else Path(".")
    sweep_stale_temporaries(directory, force=False)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = directory / temp_name(target.name)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temporary file next to it", str(target))


def _keep_mode(fd: int, target: Path) -> None:
    """A replaced file keeps its permissions; a new one has what os.open and the umask gave."""
    if not hasattr(os, "fchmod"):
        return
    try:
        info = os.stat(target)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        os.fchmod(fd, stat.S_IMODE(info.st_mode))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` atomically; raises OSError (naming `path`), old file intact."""
    target = Path(path)
    try:
        fd, tmp = new_temp_file(target)
    except OSError as exc:
        raise user_path_error(exc, target) from None
    try:
        with os.fdopen(fd, "wb") as f:
            _keep_mode(f.fileno(), target)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise user_path_error(exc, target) from None
        raise
    fsync_dir(target.parent if str(target.parent) else Path("."))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Text flavour of `atomic_write_bytes`; newlines are written as given."""
    atomic_write_bytes(path, text.encode(encoding))
