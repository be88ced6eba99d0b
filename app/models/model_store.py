"""The official SAM 2 / 2.1 checkpoints and a resumable, verified downloader.

Downloads go to `NAME.part` next to the final file and are resumed with an HTTP Range
request after an interruption or a cancel; the file gets its final name (atomically) only
once its size and, where known, its SHA-256 have been checked; without a known digest the
file must read as a weights-only checkpoint of the expected variant.

Known facts about the files: the URLs are Meta's public `dl.fbaipublicfiles.com`
paths (SAM 2.1: `092824/`, SAM 2: `072824/`). Exact byte sizes and SHA-256 digests could not
be found in any source available when this table was written, so `size` and `sha256` are
None and the download is checked against the server's Content-Length instead. The sizes
shown to the user are approximations from the official parameter counts (38.9M, 46M,
80.8M and 224.4M fp32 parameters), which agree with the ~149/176/309/857 MiB that users
report for these files.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.safety.atomic import fsync_dir
from model.sam2.config import CHECKPOINT_FILES

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_VARIANT",
    "CheckpointEntry",
    "DownloadCancelled",
    "DownloadError",
    "cache_dir",
    "checkpoint_dir",
    "download_checkpoint",
    "find_downloaded",
    "get_entry",
]

DEFAULT_VARIANT = "sam2.1-tiny"
_BLOCK = 1 << 20
_TIMEOUT_S = 30.0
_BASES = {
    "sam2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824",
    "sam2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824",
}
_PARAMS_M = {"tiny": 38.9, "small": 46.0, "base-plus": 80.8, "large": 224.4}
_LABELS = {"tiny": "Tiny", "small": "Small", "base-plus": "Base+", "large": "Large"}


class DownloadError(ValueError):
    """A download failed; the message is one line for the user. `status` is the server's
    HTTP status where it refused the request (401, 403, 404, ...), else None."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DownloadCancelled(DownloadError):
    """The caller asked to stop; the partial file is kept so the next try resumes."""


@dataclass(frozen=True)
class CheckpointEntry:
    variant: str  # a key of model.sam2.config.VARIANTS, e.g. "sam2.1-tiny"
    label: str  # "SAM 2.1 Tiny"
    filename: str
    url: str
    approx_size: int  # bytes, for display only
    size: int | None = None  # exact bytes, when known
    sha256: str | None = None  # hex digest, when known


def _entry(variant: str) -> CheckpointEntry:
    version, size_name = variant.split("-", 1)
    filename = CHECKPOINT_FILES[variant]
    return CheckpointEntry(
        variant=variant,
        label=f"SAM {version[3:]} {_LABELS[size_name]}",
        filename=filename,
        url=f"{_BASES[version]}/{filename}",
        approx_size=int(_PARAMS_M[size_name] * 4e6),
    )


CHECKPOINTS: tuple[CheckpointEntry, ...] = tuple(_entry(v) for v in CHECKPOINT_FILES)


def get_entry(variant: str) -> CheckpointEntry:
    for entry in CHECKPOINTS:
        if entry.variant == variant:
            return entry
    raise ValueError(f"unknown checkpoint {variant!r}; known: {', '.join(CHECKPOINT_FILES)}")


def cache_dir() -> Path:
    """Masklet's per-user cache folder; `MASKLET_CACHE_DIR` overrides it."""
    override = os.environ.get("MASKLET_CACHE_DIR")
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "Masklet" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "Masklet"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "masklet"


def checkpoint_dir() -> Path:
    return cache_dir() / "checkpoints"


def find_downloaded(entry: CheckpointEntry, dest_dir: str | os.PathLike[str] | None = None):
    """The completed download of `entry` in `dest_dir` (default `checkpoint_dir()`), or None."""
    path = Path(dest_dir if dest_dir is not None else checkpoint_dir()) / entry.filename
    if not path.is_file():
        return None
    if entry.size is not None and path.stat().st_size != entry.size:
        return None
    return path


def download_checkpoint(
    entry: CheckpointEntry,
    dest_dir: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None],
    should_stop: Callable[[], bool],
    base_url: str | None = None,
    timeout: float = _TIMEOUT_S,
    headers: Mapping[str, str] | None = None,
    check: Callable[[Path, CheckpointEntry], None] | None = None,
) -> Path:
    """Download `entry` into `dest_dir`, resuming a previous `.part`; returns the final path.

    `progress(done, total)` is called after every block (total 0 when unknown) and
    `should_stop()` is polled between blocks. `headers` go with the request to `entry.url`
    only, never to a host it redirects to (a Hugging Face token must not reach the CDN);
    they are neither stored nor put in any message. `check(part, entry)` replaces the SAM 2
    contents check of a file without a known digest (it raises DownloadError and removes
    the part when the file is wrong). Raises DownloadError (DownloadCancelled on stop).
    """
    dest = Path(dest_dir)
    final = dest / entry.filename
    done = find_downloaded(entry, dest)
    if done is not None:
        return done
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest}: {exc.strerror or exc}") from None
    url = f"{base_url.rstrip('/')}/{entry.filename}" if base_url else entry.url
    part = final.with_name(final.name + ".part")
    total = _fetch(url, part, entry, progress, should_stop, timeout, dict(headers or {}))
    _verify(part, entry, total, check or _check_contents)
    try:
        os.replace(part, final)
    except OSError as exc:
        raise DownloadError(f"cannot move {part.name} into place: {exc.strerror or exc}") from None
    fsync_dir(dest)
    return final


def _fetch(url, part: Path, entry: CheckpointEntry, progress, should_stop, timeout, headers) -> int:
    """Bring `part` to its full length; returns the total size the server announced."""
    offset = part.stat().st_size if part.exists() else 0
    if entry.size is not None and offset >= entry.size:
        if offset == entry.size:
            return offset
        part.unlink()
        offset = 0
    response, offset, total = _open(url, part, offset, timeout, headers)
    with response:
        if entry.size is not None and total and total != entry.size:
            raise DownloadError(
                f"{entry.filename}: server file is {total} bytes, expected {entry.size}"
            )
        if total and total == offset:
            return total
        _check_space(part.parent, total - offset if total else 0)
        _stream(response, part, offset, total, progress, should_stop)
    return total


def _open(url: str, part: Path, offset: int, timeout: float, headers: dict[str, str]):
    """Open the URL, asking for bytes from `offset`; returns (response, offset, total)."""
    request = urllib.request.Request(url, headers={"User-Agent": "masklet"})
    for name, value in headers.items():
        # Unredirected: urllib copies ordinary headers into the request to a redirect's host.
        request.add_unredirected_header(name, value)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # The partial file no longer matches the server's; start over.
            part.unlink(missing_ok=True)
            return _open(url, part, 0, timeout, headers)
        message = f"{url}: HTTP {exc.code} {_http_reason(exc)}"
        raise DownloadError(message, status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"network error fetching {url}: {reason}") from None
    length = int(response.headers.get("Content-Length") or 0)
    if offset and response.status == 206:
        return response, offset, offset + length if length else 0
    if offset:
        part.unlink(missing_ok=True)  # the server ignored the range: restart from byte 0
    return response, 0, length


def _http_reason(exc: urllib.error.HTTPError) -> str:
    return "not found" if exc.code == 404 else str(exc.reason or "error")


def _check_space(directory: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if needed > free:
        raise DownloadError(
            f"not enough disk space in {directory}: need {needed / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free"
        )


def _append(f, data: bytes) -> None:
    f.write(data)


def _stream(response, part: Path, offset: int, total: int, progress, should_stop) -> None:
    done = offset
    try:
        with open(part, "ab" if offset else "wb") as f:
            progress(done, total)
            while True:
                if should_stop():
                    raise DownloadCancelled(f"download of {part.name[:-5]} cancelled")
                try:
                    block = response.read(_BLOCK)
                except (OSError, http.client.HTTPException) as exc:
                    reason = type(exc).__name__
                    raise DownloadError(
                        f"download interrupted ({reason}); try again to resume"
                    ) from None
                if not block:
                    break
                _append(f, block)
                done += len(block)
                progress(done, total)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DownloadError(f"disk full while writing {part}") from None
        raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from None


def _verify(part: Path, entry: CheckpointEntry, total: int, check) -> None:
    size = part.stat().st_size
    expected = entry.size if entry.size is not None else total
    if expected and size < expected:
        raise DownloadError(
            f"download of {entry.filename} stopped at {size} of {expected} bytes; "
            "try again to resume"
        )
    if expected and size != expected:
        part.unlink()
        raise DownloadError(f"{entry.filename}: got {size} bytes, expected {expected}")
    if entry.sha256 is None:
        check(part, entry)
        return
    digest = hashlib.sha256()
    with open(part, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256.lower():
        part.unlink()
        raise DownloadError(f"{entry.filename}: SHA-256 mismatch, the download is corrupt")


def _check_contents(part: Path, entry: CheckpointEntry) -> None:
    """Without a published digest, the file must at least be the checkpoint we asked for.

    Reading it (weights only, nothing executed) and detecting its variant from the keys
    and shapes catches truncation, an HTML error page saved as `.pt`, or the wrong file.
    """
    from model.sam2.checkpoint import CheckpointError, detect_variant, read_state_dict

    try:
        found = detect_variant(read_state_dict(part), name=entry.filename).name
    except CheckpointError as exc:
        part.unlink()
        raise DownloadError(f"downloaded file is not a usable checkpoint: {exc}") from None
    if found != entry.variant:
        part.unlink()
        raise DownloadError(
            f"{entry.filename}: downloaded a {found} checkpoint, expected {entry.variant}"
        )
