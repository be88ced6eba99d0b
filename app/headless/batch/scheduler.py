"""Runs a batch on Ray: one `TrackWorker` actor per worker, videos handed out as workers free up.

- Without an address Ray starts in-process on this machine (its CPUs and GPUs); with one,
  the batch joins that cluster and its workers read the manifest's paths themselves.
- Videos go out largest first (by file size, the cheapest measure of work the driver has,
  and one it can take without decoding), so one long video does not finish last alone.
- A worker that dies (killed, out of memory, its node lost) is replaced and its video
  handed out again, up to `max_attempts` times in all; its output is complete or absent
  because every export writes under a temporary name and renames (app.export).
- Ctrl+C stops the workers; what finished is logged, and the same command resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import app
from app.headless.batch.ledger import Ledger
from app.headless.batch.manifest import ManifestEntry
from app.headless.batch.progress import BatchProgress
from app.headless.batch.worker import FinderSettings, TrackWorker, VideoTask

__all__ = ["BatchEvent", "BatchSettings", "BatchSummary", "run_batch"]

_WAIT_S = 1.0  # between checks for Ctrl+C while every worker is busy
_MAX_FOLDER_ENTRIES = 100_000  # sizing an image folder: a sample is enough


class BatchAborted(ValueError):
    """The whole batch cannot go on (the model does not load on a worker)."""


@dataclass(frozen=True)
class BatchSettings:
    checkpoint: str
    image_size: int | None
    fmt: str
    out: Path
    precision: str = "auto"  # auto | exact | fast, as `masklet track --precision`
    workers: int | None = None  # None: one per GPU share, or one on CPUs
    gpus_per_worker: float = 0.0
    address: str | None = None
    max_attempts: int = 3
    finder_checkpoint: Path | None = None  # SAM 3, for entries with `find`
    find_threshold: float = 0.5
    find_every: int | None = None  # for entries without their own `find_every`


@dataclass(frozen=True)
class BatchSummary:
    total: int
    finished: int
    skipped: int
    failed: int
    interrupted: bool


@dataclass(frozen=True)
class BatchEvent:
    """What an observer (tests, a future UI) hears: a video handed to a worker."""

    entry_id: str
    attempt: int
    actor: Any


Observer = Callable[[BatchEvent], None]


@dataclass
class _Pending:
    task: VideoTask
    work: float
    attempt: int = 1


def run_batch(
    entries: list[ManifestEntry], settings: BatchSettings, *, observer: Observer | None = None
) -> BatchSummary:
    """Track every entry not already finished (by checksum); failures go to the logs."""
    from app.safety.atomic import sweep_stale_temporaries

    ledger = Ledger(settings.out)
    ledger.load()
    todo = [e for e in entries if ledger.finished(e.id) is None]
    ledger.start_run()
    # Temporaries of workers killed in an earlier run (their pids are gone).
    sweep_stale_temporaries(settings.out)
    for entry in todo:
        sweep_stale_temporaries(settings.out / entry.id)
    pending = [_Pending(VideoTask(e, settings.fmt, settings.out), _work(e.video)) for e in todo]
    pending.sort(key=lambda p: -p.work)
    progress = BatchProgress(len(entries), len(entries) - len(todo), sum(p.work for p in pending))
    interrupted = False
    if pending:
        progress.draw()
        try:
            _Driver(settings, ledger, progress, observer).run(pending)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.close()
    return BatchSummary(
        len(entries), progress.finished, progress.skipped, progress.failed, interrupted
    )


def _work(video: Path) -> float:
    """A video's size in bytes (an image folder's: its files'); 0 if the driver cannot see it."""
    try:
        if not video.is_dir():
            return float(video.stat().st_size)
        total = 0
        with os.scandir(video) as entries:
            for i, item in enumerate(entries):
                if i >= _MAX_FOLDER_ENTRIES:
                    break
                if item.is_file(follow_symlinks=False):
                    total += item.stat(follow_symlinks=False).st_size
        return float(total)
    except OSError:
        return 0.0


class _Driver:
    """Hands videos to actors, collects results, replaces dead actors."""

    def __init__(self, settings, ledger: Ledger, progress: BatchProgress, observer) -> None:
        self.settings = settings
        self.ledger = ledger
        self.progress = progress
        self.observer = observer
        self.started_ray = False
        self.actor_class = None
        self.idle: list[Any] = []
        self.running: dict[Any, tuple[Any, _Pending]] = {}  # ObjectRef -> (actor, task)

    def run(self, queue: list[_Pending]) -> None:
        import ray

        try:
            count = self._start(len(queue))
            self.idle = [self._new_actor() for _ in range(count)]
            while queue or self.running:
                while queue and self.idle:
                    self._dispatch(self.idle.pop(), queue.pop(0))
                ready, _ = ray.wait(list(self.running), num_returns=1, timeout=_WAIT_S)
                for ref in ready:
                    self._collect(ref, queue)
        finally:
            self._stop()

    def _start(self, videos: int) -> int:
        """Ray up (in-process unless an address is given); the number of workers to start."""
        import ray

        if not ray.is_initialized():
            if self.settings.address:
                ray.init(address=self.settings.address, logging_level="ERROR", log_to_driver=False)
            else:
                # Local workers import this very checkout, whatever is installed.
                source = str(Path(app.__file__).resolve().parents[1])
                env = {"PYTHONPATH": os.pathsep.join(filter(None, [source, _pythonpath()]))}
                ray.init(
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                    runtime_env={"env_vars": env},
                )
            self.started_ray = True
        resources = ray.cluster_resources()
        gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 1.0)
        share = self.settings.gpus_per_worker
        if share > 0 and not self.settings.address and gpus < share:
            raise BatchAborted(f"--gpus-per-worker {share:g}: this machine has {gpus:g} GPUs")
        workers = self.settings.workers or (int(gpus // share) if share > 0 else 1)
        workers = max(1, min(workers, videos))
        # CPUs split evenly, so torch's thread count (Ray sets it from num_cpus) fits.
        per_worker = max(0.01, round(cpus / workers, 2) if cpus < workers else cpus // workers)
        self.actor_class = ray.remote(TrackWorker).options(
            num_cpus=per_worker, num_gpus=share, max_restarts=0, max_task_retries=0
        )
        return workers

    def _new_actor(self):
        s = self.settings
        device = "cuda" if s.gpus_per_worker > 0 else "cpu"
        finding = FinderSettings(s.finder_checkpoint, s.find_threshold, s.find_every)
        return self.actor_class.remote(s.checkpoint, s.image_size, device, s.precision, finding)

    def _dispatch(self, actor, item: _Pending) -> None:
        ref = actor.run.remote(item.task)
        self.running[ref] = (actor, item)
        if self.observer is not None:
            self.observer(BatchEvent(item.task.entry.id, item.attempt, actor))

    def _collect(self, ref, queue: list[_Pending]) -> None:
        import ray

        actor, item = self.running.pop(ref)
        try:
            result = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            self._worker_died(actor, item, queue, exc)
            return
        except ray.exceptions.RayError as exc:
            result = {"error": f"internal error: {_first_line(exc)}"}
        self.idle.append(actor)
        if "fatal" in result:
            raise BatchAborted(result["fatal"])
        if "ok" in result:
            self.ledger.record_done(result["ok"])
            self.progress.video_finished(result["ok"]["frames"], item.work)
        else:
            self._fail(item, result["error"])

    def _worker_died(self, actor, item: _Pending, queue: list[_Pending], exc) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        self.idle.append(self._new_actor())
        if item.attempt >= self.settings.max_attempts:
            reason = f"the worker died {item.attempt} times tracking it ({_first_line(exc)})"
            self._fail(item, f"error: {reason}")
            return
        # First in line: a retry should not wait behind the whole queue.
        queue.insert(0, _Pending(item.task, item.work, item.attempt + 1))

    def _fail(self, item: _Pending, error: str) -> None:
        entry = item.task.entry
        record = {"id": entry.id, "line": entry.line, "video": str(entry.video), "error": error}
        self.ledger.record_failure(record)
        self.progress.video_failed(item.work)

    def _stop(self) -> None:
        import ray

        actors = [a for a, _ in self.running.values()] + self.idle
        for actor in actors:
            ray.kill(actor, no_restart=True)
        self.running.clear()
        self.idle.clear()
        if self.started_ray:
            ray.shutdown()


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
