"""Atomic file writes: a reader sees either the old file or the new one, never a mix.

The data goes to a temporary file in the destination's directory (so the final
`os.replace` is a same-filesystem rename, which POSIX and Windows make atomic), is
flushed and fsynced, then renamed over the destination. The directory is fsynced
afterwards where the platform allows it, so the rename itself survives a power cut.
On any failure the destination is untouched and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir"]


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


def _match_mode(fd: int, target: Path) -> None:
    """mkstemp creates 0600 files; keep the replaced file's mode, else the usual 0644."""
    if not hasattr(os, "fchmod"):
        return
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    os.fchmod(fd, mode)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` atomically; raises OSError with the old file intact."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        _match_mode(fd, target)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(directory)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Text flavour of `atomic_write_bytes`; newlines are written as given."""
    atomic_write_bytes(path, text.encode(encoding))
