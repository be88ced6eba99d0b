"""The model dialog's second slot: SAM 3's finder (`sam3.pt`), which finds objects by name.

Meta gates the file on Hugging Face, so the slot says how to get access and whether a token
was found (never showing it), downloads with that token (`app.models.finder_store`), or
takes a local file. Choosing a file only names it: the window loads it in the worker and
remembers it once it has loaded.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
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
from app.models.finder_store import (
    FINDER,
    MODEL_PAGE,
    download_finder,
    find_downloaded_finder,
    find_token,
)
from app.models.model_store import checkpoint_dir

__all__ = ["FinderSlot"]

_MIB = 2**20
_GIB = 2**30


def access_text() -> str:
    """How to get the gated file, as rich text with the model page as a link."""
    return (
        f"<b>sam3.pt</b> (~{FINDER.approx_size / _GIB:.1f} GiB) is gated by Meta. To download "
        f'it: open <a href="{MODEL_PAGE}">huggingface.co/facebook/sam3</a>, log in and accept '
        "the licence, then run <code>hf auth login</code> (or set <code>HF_TOKEN</code>). "
        "Masklet uses that token for the download and never stores it."
    )


def token_text() -> str:
    token = find_token()
    if token is None:
        return "Hugging Face token: none found. Download needs one; a local file does not."
    return f"Hugging Face token: found ({token.source})."


def _size(path: Path) -> int:
    """Bytes of a regular file; 0 when there is none or it cannot be read."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


class FinderSlot(QGroupBox):
    """Download `sam3.pt` or choose a local file; `chosen(Path)` names the file to load."""

    chosen = Signal(object)  # Path
    download_failed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        base_url: str | None = None,
        dest_dir: str | Path | None = None,
        current: str | None = None,
    ) -> None:
        super().__init__("Finder: SAM 3, finds objects by name (Edit > Find Objects)", parent)
        self._base_url = base_url
        self._dest = Path(dest_dir) if dest_dir is not None else checkpoint_dir()
        self._thread: QThread | None = None
        self._worker: DownloadWorker | None = None
        self._build(current)
        self._update_buttons()

    def is_downloading(self) -> bool:
        return self._thread is not None

    def _build(self, current: str | None) -> None:
        self.current_label = QLabel(f"Current finder: {current}" if current else "No finder yet.")
        self.access_label = QLabel(access_text())
        self.access_label.setWordWrap(True)
        self.access_label.setOpenExternalLinks(True)
        self.token_label = QLabel(token_text())
        self.token_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress_label = QLabel("")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.download_button = QPushButton("Download sam3.pt")
        self.stop_button = QPushButton("Cancel download")
        self.local_button = QPushButton("Choose local sam3.pt...")
        self.download_button.clicked.connect(self._on_download_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.local_button.clicked.connect(self._on_local_clicked)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.stop_button, self.local_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for widget in (self.current_label, self.access_label, self.token_label, self.progress):
            layout.addWidget(widget)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

    def _update_buttons(self) -> None:
        busy = self.is_downloading()
        done = find_downloaded_finder(self._dest) is not None
        self.download_button.setText("Use downloaded sam3.pt" if done else "Download sam3.pt")
        self.download_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.local_button.setEnabled(not busy)

    # -- slots -------------------------------------------------------------------------------
    def _on_download_clicked(self) -> None:
        if self.is_downloading():
            return
        existing = find_downloaded_finder(self._dest)
        if existing is not None:
            self.chosen.emit(existing)
            return
        self.error_label.clear()
        self.token_label.setText(token_text())
        self.progress.setValue(0)
        self.progress_label.setText("Connecting to huggingface.co...")
        dest, base_url = self._dest, self._base_url
        self._thread, self._worker = start_download(
            self,
            lambda progress, should_stop: download_finder(
                dest, progress=progress, should_stop=should_stop, base_url=base_url
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

    def _on_finished(self, path: Path) -> None:
        self.stop()
        self.progress.setValue(100)
        self.chosen.emit(path)

    def _on_failed(self, message: str) -> None:
        self.stop()
        self.error_label.setText(message)
        kept = _size(self._dest / (FINDER.filename + ".part"))
        self.progress_label.setText(
            f"Stopped at {kept / _MIB:.0f} MiB; Download resumes it." if kept else ""
        )
        self.download_failed.emit(message)

    def _on_cancelled(self, _message: str) -> None:
        self.stop()
        self.progress_label.setText("Paused; Download again to resume.")

    def _on_local_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose SAM 3's sam3.pt", "", "Checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self.chosen.emit(Path(path))

    def stop(self) -> None:
        """Stop a running download (its `.part` stays for the next one)."""
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        stop_download(thread, worker)
        self.progress.setRange(0, 100)
        self._update_buttons()
