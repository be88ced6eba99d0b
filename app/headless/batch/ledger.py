"""The logs of a batch in `--out`: what finished (`batch.jsonl`), what failed (`failures.jsonl`).

`batch.jsonl` gets one line per finished video, appended as it finishes:

    {"id": "a", "line": 1, "video": "...", "frames": 120, "seconds": 8.4,
     "outputs": [{"path": "a/masks.json", "sha256": "..."}]}

Output paths are relative to `--out`. A run skips a video whose last line here lists
outputs that all still exist with those checksums, so re-running the same command resumes
a batch; anything else (missing, changed, or a line cut short by a kill) is done again.
`failures.jsonl` holds this run's failures, one line each with the manifest line and the
one-line error; it starts empty at every run, since each run retries every failure.

Lines are appended with one `write` of a whole line and fsynced, so a kill leaves at most a
cut last line, which the reader skips.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.safety.atomic import atomic_write_bytes
from app.safety.safe_io import JsonError, check_regular_file, parse_json

__all__ = ["BATCH_LOG", "FAILURES_LOG", "Ledger", "sha256_file"]

BATCH_LOG = "batch.jsonl"
FAILURES_LOG = "failures.jsonl"
# Our own log, but it lives in a user folder: bounded like any file we read.
_MAX_LOG_BYTES = 8 * 1024**3
_MAX_LOG_LINE = 64 * 1024**2
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class Ledger:
    """Reads and appends the two logs of one output folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._done: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Read `batch.jsonl` (if any); the last well-formed line per id wins."""
        path = self.out / BATCH_LOG
        if not path.exists():
            return
        try:
            check_regular_file(path, max_bytes=_MAX_LOG_BYTES)
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        for record in _records(path):
            self._done[record["id"]] = record

    def finished(self, entry_id: str) -> dict[str, Any] | None:
        """The logged record of `entry_id` if its outputs are all there, unchanged."""
        record = self._done.get(entry_id)
        if record is None or not record["outputs"]:
            return None
        for output in record["outputs"]:
            path = self.out / output["path"]
            if not _inside(path, self.out / entry_id) or not path.is_file():
                return None
            if sha256_file(path) != output["sha256"]:
                return None
        return record

    def start_run(self) -> None:
        """This run's failures log starts empty (every failure is retried)."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.out / FAILURES_LOG, b"")

    def record_done(self, record: dict[str, Any]) -> None:
        self._done[record["id"]] = record
        _append(self.out / BATCH_LOG, record)

    def record_failure(self, record: dict[str, Any]) -> None:
        _append(self.out / FAILURES_LOG, record)


def _inside(path: Path, folder: Path) -> bool:
    """A logged path must stay in its video's folder: the log is a file a user can edit."""
    return os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


def _append(path: Path, record: dict[str, Any]) -> None:
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """Well-formed lines of `batch.jsonl`; a cut or edited line is skipped (its video is redone)."""
    with open(path, "rb") as f:
        while line := f.readline(_MAX_LOG_LINE):
            try:
                record = parse_json(line)
            except JsonError:
                continue
            if _well_formed(record):
                yield record


def _well_formed(record: Any) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return False
    outputs = record.get("outputs")
    return isinstance(outputs, list) and all(
        isinstance(o, dict) and isinstance(o.get("path"), str) and isinstance(o.get("sha256"), str)
        for o in outputs
    )
