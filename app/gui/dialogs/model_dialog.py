"""The model dialog: download an official checkpoint or pick a local `.pt` file, for the
tracker (SAM 2) and, in its second slot (`app.gui.dialogs.finder_slot`), the finder (SAM 3).

The download runs in a `DownloadWorker` moved to its own QThread; the GUI only sees its
signals, so it never freezes. Cancelling keeps the `.part` file, and the next Download
resumes it (see app/models/model_store.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.dialogs.download_worker import (
    DownloadWorker,
    ask_to_stop,
    show_progress,
    start_download,
    stop_download,
)
from app.gui.dialogs.finder_slot import FinderSlot
from app.models.devices import device_problems
from app.models.model_store import (
    CHECKPOINTS,
    DEFAULT_VARIANT,
    CheckpointEntry,
    checkpoint_dir,
    download_checkpoint,
    find_downloaded,
)

__all__ = ["ModelChoice", "ModelDialog"]

_MIB = 2**20


class ModelChoice(NamedTuple):
    """What the dialog was closed with: a checkpoint for the tracker or the finder."""

    checkpoint: str
    device: str
    slot: str = "tracker"  # or "finder"


def _available_devices() -> list[str]:
    return [d for d, problem in device_problems().items() if problem is None]


class ModelDialog(QDialog):
    """Choose or download a SAM 2 checkpoint; `checkpoint_path()` and `device()` on accept."""

    download_progressed = Signal(object, object)  # (done bytes, total bytes or 0)
    download_finished = Signal(object)  # Path
    download_failed = Signal(str)
    download_cancelled = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        base_url: str | None = None,
        dest_dir: str | Path | None = None,
        device: str = "cpu",
        current: str | None = None,
        finder_current: str | None = None,
        finder_base_url: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a segmentation model")
        self._base_url = base_url
        self._dest = Path(dest_dir) if dest_dir is not None else checkpoint_dir()
        self._path: Path | None = None
        self._finder_path: Path | None = None
        # The second slot: SAM 3's finder; choosing it closes the dialog as the tracker does.
        self.finder = FinderSlot(
            self, base_url=finder_base_url, dest_dir=self._dest, current=finder_current
        )
        self.finder.chosen.connect(self._choose_finder)
        self._thread: QThread | None = None
        self._worker: DownloadWorker | None = None
        self._build(device, current)
        self._refresh_items()

    # -- public ------------------------------------------------------------------------------

    def checkpoint_path(self) -> Path | None:
        return self._path

    def finder_path(self) -> Path | None:
        """The finder checkpoint chosen (downloaded or local); None when the tracker was."""
        return self._finder_path

    def choice(self) -> ModelChoice | None:
        if self._finder_path is not None:
            return ModelChoice(str(self._finder_path), self.device(), "finder")
        if self._path is not None:
            return ModelChoice(str(self._path), self.device())
        return None

    def device(self) -> str:
        return self.device_box.currentText()

    def selected_entry(self) -> CheckpointEntry:
        return CHECKPOINTS[max(self.list.currentRow(), 0)]

    def is_downloading(self) -> bool:
        return self._thread is not None

    # -- layout ------------------------------------------------------------------------------

    def _build(self, device: str, current: str | None) -> None:
        """`current` describes the loaded model ("sam2.1-tiny on cpu"), None when none is."""
        if current:
            text = f"Current model: {current}. Pick another checkpoint, or Close to keep it."
        else:
            text = (
                "Masklet needs a SAM 2 checkpoint: download one (Tiny is the fastest) "
                "or choose a .pt file."
            )
        intro = self.intro = QLabel(text)
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress_label = QLabel("")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.device_box = QComboBox()
        self.device_box.addItems(_available_devices())
        if self.device_box.findText(device) >= 0:
            self.device_box.setCurrentText(device)
        self.download_button = QPushButton("Download")
        self.stop_button = QPushButton("Cancel download")
        self.local_button = QPushButton("Choose local file...")
        self.close_button = QPushButton("Close")
        self.download_button.clicked.connect(self._on_download_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.local_button.clicked.connect(self._on_local_clicked)
        self.close_button.clicked.connect(self.reject)
        self.list.currentRowChanged.connect(self._on_selection_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self._on_download_clicked())
        device_row = QHBoxLayout()
        device_row.addWidget(QLabel("Device:"))
        device_row.addWidget(self.device_box, 1)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.stop_button, self.local_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        closing = QHBoxLayout()
        closing.addStretch(1)
        closing.addWidget(self.close_button)
        tracker = QGroupBox("Tracker: SAM 2 / 2.1, segments and tracks what you click")
        slot = QVBoxLayout(tracker)
        for widget in (self.list, self.progress, self.progress_label, self.error_label):
            slot.addWidget(widget)
        slot.addLayout(buttons)
        self.list.setMaximumHeight(self.list.fontMetrics().lineSpacing() * (len(CHECKPOINTS) + 2))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(tracker)
        layout.addLayout(device_row)
        layout.addWidget(self.finder)
        layout.addLayout(closing)
        self.resize(600, self.sizeHint().height())

    def _refresh_items(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for entry in CHECKPOINTS:
            QListWidgetItem(self._item_text(entry), self.list)
        default = next(i for i, e in enumerate(CHECKPOINTS) if e.variant == DEFAULT_VARIANT)
        self.list.setCurrentRow(row if row >= 0 else default)
        self._update_buttons()

    def _item_text(self, entry: CheckpointEntry) -> str:
        size = entry.size or entry.approx_size
        text = f"{entry.label}  ({'' if entry.size else '~'}{size / _MIB:.0f} MiB)"
        if find_downloaded(entry, self._dest) is not None:
            return text + "  - downloaded"
        kept = self._partial_bytes(entry)
        if kept:
            return text + f"  - {kept / _MIB:.0f} MiB partial, will resume"
        return text

    def _partial_bytes(self, entry: CheckpointEntry) -> int:
        """Bytes of `entry` kept in its `.part` file from an earlier download; 0 if none."""
        part = self._dest / (entry.filename + ".part")
        try:
            return part.stat().st_size if part.is_file() else 0
        except OSError:
            return 0

    def _update_buttons(self) -> None:
        busy = self.is_downloading()
        downloaded = find_downloaded(self.selected_entry(), self._dest) is not None
        self.download_button.setText("Use" if downloaded else "Download")
        self.download_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.local_button.setEnabled(not busy)
        self.list.setEnabled(not busy)

    # -- slots -------------------------------------------------------------------------------

    def _on_selection_changed(self, _row: int) -> None:
        self.error_label.clear()
        self._update_buttons()

    def _on_download_clicked(self) -> None:
        if self.is_downloading():
            return
        entry = self.selected_entry()
        existing = find_downloaded(entry, self._dest)
        if existing is not None:
            self._choose(existing)
            return
        self.error_label.clear()
        self.progress.setValue(0)
        self.progress_label.setText(f"Connecting for {entry.label}...")
        self._start_worker(entry)

    def _start_worker(self, entry: CheckpointEntry) -> None:
        dest, base_url = self._dest, self._base_url
        self._thread, self._worker = start_download(
            self,
            lambda progress, should_stop: download_checkpoint(
                entry, dest, progress=progress, should_stop=should_stop, base_url=base_url
            ),
            progressed=self._on_progress,
            finished=self._on_finished,
            failed=self._on_failed,
            cancelled=self._on_cancelled,
        )
        self._update_buttons()

    def _on_stop_clicked(self) -> None:
        ask_to_stop(self._worker, self.progress_label)

    def _on_progress(self, done: int, total: int) -> None:
        show_progress(self.progress, self.progress_label, done, total)
        self.download_progressed.emit(done, total)

    def _on_finished(self, path: Path) -> None:
        self._stop_thread()
        self.progress.setRange(0, 100)
        self.progress.setValue(100)
        self.download_finished.emit(path)
        self._choose(path)

    def _on_failed(self, message: str) -> None:
        kept = self._partial_bytes(self.selected_entry())
        self._stop_thread()
        self.error_label.setText(message)
        if kept:
            # Only a kept `.part` can be resumed; at 0 % there is nothing to resume.
            text = f"Download stopped at {kept / _MIB:.1f} MiB; click Download to resume."
        else:
            text = "Nothing was downloaded. Check the internet connection, then click Download."
        self.progress_label.setText(text)
        self.download_failed.emit(message)

    def _on_cancelled(self, message: str) -> None:
        self._stop_thread()
        self.progress_label.setText("Paused; Download again to resume.")
        self.download_cancelled.emit(message)

    def _on_local_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a SAM 2 checkpoint", "", "Checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self._choose(Path(path))

    # -- helpers -----------------------------------------------------------------------------

    def _choose(self, path: Path) -> None:
        self._path = path
        self.accept()

    def _choose_finder(self, path: Path) -> None:
        self._finder_path = path
        self.accept()

    def _stop_thread(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        stop_download(thread, worker)
        self.progress.setRange(0, 100)
        self._refresh_items()

    def done(self, result: int) -> None:
        """Closing by any route stops a running download first, keeping its `.part`."""
        self._stop_thread()
        self.finder.stop()
        super().done(result)
