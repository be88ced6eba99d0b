"""One download off the GUI thread, for the model dialog's tracker and finder slots.

The worker is moved to its own QThread; the GUI only sees its signals, so it never
freezes. A `threading.Event` asks it to stop between blocks; the downloader keeps the
`.part` file so the next try resumes (app/models/model_store.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.models.model_store import DownloadCancelled, DownloadError

__all__ = ["DownloadWorker", "Fetch", "start_download", "stop_download"]

# (progress(done, total), should_stop()) -> the completed file; raises DownloadError.
Fetch = Callable[[Callable[[int, int], None], Callable[[], bool]], Path]


_MIB = 2**20


class DownloadWorker(QObject):
    """Runs one `fetch` off the GUI thread; `stop_event` asks it to stop."""

    progressed = Signal(object, object)  # (done bytes, total bytes or 0); may exceed 2**31
    finished = Signal(object)  # Path of the completed checkpoint
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, fetch: Fetch) -> None:
        super().__init__()
        self._fetch = fetch
        self.stop_event = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            path = self._fetch(self.progressed.emit, self.stop_event.is_set)
        except DownloadCancelled as exc:
            self.cancelled.emit(str(exc))
        except DownloadError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not kill the thread silently
            self.failed.emit(f"Download failed: {exc or type(exc).__name__}")
        else:
            self.finished.emit(path)


def start_download(
    parent: QObject,
    fetch: Fetch,
    *,
    progressed: Callable[[int, int], None],
    finished: Callable[[Path], None],
    failed: Callable[[str], None],
    cancelled: Callable[[str], None],
) -> tuple[QThread, DownloadWorker]:
    """Start `fetch` on a new thread parented to `parent`, its signals connected (queued)."""
    thread = QThread(parent)
    worker = DownloadWorker(fetch)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.progressed.connect(progressed)
    worker.finished.connect(finished)
    worker.failed.connect(failed)
    worker.cancelled.connect(cancelled)
    thread.start()
    return thread, worker


def stop_download(thread: QThread | None, worker: DownloadWorker | None) -> None:
    """Ask the worker to stop, end its thread and wait for it; the `.part` stays."""
    if worker is not None:
        worker.stop_event.set()
    if thread is not None:
        thread.quit()
        thread.wait()
    if worker is not None:
        worker.deleteLater()


def show_progress(bar: Any, label: Any, done: int, total: int) -> None:
    """A download's progress on `bar` (a QProgressBar) and in `label`: "MiB / MiB (percent)",
    or the MiB alone with the bar busy where the server gave no size."""
    if total:
        bar.setValue(int(100 * done / total))
        label.setText(f"{done / _MIB:.1f} / {total / _MIB:.1f} MiB ({100 * done / total:.0f}%)")
    else:
        bar.setRange(0, 0)
        label.setText(f"{done / _MIB:.1f} MiB")


def ask_to_stop(worker: DownloadWorker | None, label: Any) -> None:
    """Ask a running download to stop (it keeps its `.part` for the next one)."""
    if worker is not None:
        worker.stop_event.set()
        label.setText("Stopping...")
