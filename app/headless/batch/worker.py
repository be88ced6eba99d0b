"""What a batch worker does: load the model once, then track video after video.

`TrackWorker` is plain Python; `app.headless.batch.scheduler` turns it into a Ray actor, one per
worker, so each process holds one model. Each video goes through `app.headless.track_run.run_track`,
the code path of `masklet track`, so a batch gives the masks `masklet track` gives.

A video's outputs live in `OUT/<id>/` and are written the way every export writes
(`app.export`): a PNG folder is built as a temporary sibling and renamed, a file is written
under a temporary name and renamed, so a worker killed at any moment leaves the output
complete or absent, plus at most a temporary of our naming that the next run sweeps.
A bad video is that video's error: `run` returns it as a one-line message, never raises.
SAM 3's finder loads once too, at the first video whose entry has `find`; a finder that
cannot load ends the batch as a model that cannot load does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.export.output_guard import Output, check_outputs
from app.headless.batch.ledger import sha256_file
from app.headless.batch.manifest import ManifestEntry
from app.headless.finding import FindSpec, load_finder
from app.headless.track_run import TrackJob, load_model, run_track
from app.safety.errors import describe_error
from model.kernels.allocator import retain_freed_memory

__all__ = ["FILE_NAMES", "FinderSettings", "TrackWorker", "VideoTask", "output_path"]

# The output of a video under OUT/<id>/ per format; png is the folder itself.
FILE_NAMES = {"coco": "masks.json", "ytvis": "masks.json", "mp4": "overlay.mp4"}


@dataclass(frozen=True)
class FinderSettings:
    """The batch's finder: its checkpoint (the worker's path), threshold and default find_every."""

    checkpoint: Path | None = None
    threshold: float = 0.5
    every: int | None = None


@dataclass(frozen=True)
class VideoTask:
    entry: ManifestEntry
    fmt: str
    out_root: Path


def output_path(task: VideoTask) -> Path:
    folder = task.out_root / task.entry.id
    name = FILE_NAMES.get(task.fmt)
    return folder if name is None else folder / name


class TrackWorker:
    """One model, loaded once; `run(task)` tracks and exports one video."""

    def __init__(
        self,
        checkpoint: str,
        image_size: int | None,
        device: str,
        precision: str = "auto",
        finding: FinderSettings | None = None,
    ) -> None:
        self._device = device
        self._precision = precision
        self._finding = finding or FinderSettings()
        self._finder = None
        self._model = None
        self._load_error: str | None = None
        retain_freed_memory()  # a Ray worker process does not start through app.headless.cli.main
        _silence_native_logs()
        try:
            self._model = load_model(checkpoint, image_size, device)
        except Exception as exc:  # noqa: BLE001 - reported by run(), the batch stops on it
            self._load_error = f"cannot load the model: {describe_error(exc)}"

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: VideoTask) -> dict[str, Any]:
        """{"ok": record for batch.jsonl} or {"error": line}; {"fatal": line} if no model."""
        if self._model is None:
            return {"fatal": self._load_error or "the model did not load"}
        entry = task.entry
        started = time.monotonic()
        if entry.find and self._finder is None:
            try:
                self._finder = self._load_finder()
            except Exception as exc:  # noqa: BLE001 - reported as fatal: the batch stops on it
                return {"fatal": f"cannot load the finder: {describe_error(exc)}"}
        try:
            record = self._track(task)
        except Exception as exc:  # noqa: BLE001 - one video's failure must not end the worker
            return {"error": describe_error(exc)}
        record["seconds"] = round(time.monotonic() - started, 3)
        return {"ok": {"id": entry.id, "line": entry.line, "video": str(entry.video), **record}}

    def _track(self, task: VideoTask) -> dict[str, Any]:
        entry = task.entry
        folder = task.out_root / entry.id
        job = TrackJob(
            video=entry.video,
            fmt=task.fmt,
            out=output_path(task),
            prompts=entry.prompts,
            annotations=entry.annotations,
            direction=entry.direction,
            device=self._device,
            precision=self._precision,
            find=self._find_spec(entry),
        )
        # The driver checked --out against every input with its view of the paths; a
        # worker's own view (other mounts, other symlinks) is checked here too.
        check_outputs([Output(folder, is_folder=True)], job.inputs)
        found: list[str] = []
        result = run_track(
            job, lambda: self._model, get_finder=lambda: self._finder, note=found.append
        )
        outputs = [
            {"path": p.relative_to(task.out_root).as_posix(), "sha256": sha256_file(p)}
            for p in sorted(result.paths)
        ]
        record: dict[str, Any] = {"frames": result.frames_total, "outputs": outputs}
        if entry.find:
            record["found"] = found  # the finder's notes: what it found on which frame
        return record

    def _load_finder(self):
        if self._finding.checkpoint is None:
            raise ValueError("the manifest has 'find' but the batch has no --finder-checkpoint")
        return load_finder(Path(self._finding.checkpoint), self._device)

    def _find_spec(self, entry: ManifestEntry) -> FindSpec | None:
        if not entry.find or self._finding.checkpoint is None:
            return None
        every = entry.find_every if entry.find_every is not None else self._finding.every
        return FindSpec(entry.find, Path(self._finding.checkpoint), every, self._finding.threshold)


def _silence_native_logs() -> None:
    """OpenCV's C++ warnings about a damaged frame would bypass the one-line error."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
