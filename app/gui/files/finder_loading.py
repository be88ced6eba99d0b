"""SAM 3's finder in the worker, from the window's side: loading it when it is chosen or first
needed, saying so, and remembering a chosen file only once it has loaded.

Start-up stays fast: a finder remembered from an earlier session is not loaded at start
(`sam3.pt` is 3.4 GB and the worker does one thing at a time, so loading it would hold up
the first clicks); `ensure_loaded` loads it when something first needs it (the Find bar
opening, "Find new instances while propagating" turned on). A file that fails to load
leaves the finder that worked in place (the worker keeps it) and the settings unchanged.
A loaded finder follows the tracker when it moves to another device.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QStatusBar

from app.gui.files.error_text import without_exception_name
from app.gui.settings import AppSettings
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import FinderInfo, JobError, ModelInfo

__all__ = ["LOAD_ACTION", "FinderLoading"]

LOAD_ACTION = "loading the finder"  # the worker's action name for LoadFinder


class FinderLoading(QObject):
    """The finder the worker holds (`info`), and the loads on their way."""

    loaded = Signal(object)  # jobs.FinderInfo: this finder is now the worker's

    def __init__(
        self,
        client: WorkerClient,
        settings: AppSettings,
        status_bar: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._settings = settings
        self._status = status_bar
        self.info: FinderInfo | None = None
        # request id -> (checkpoint, remember once loaded)
        self._loading: dict[int, tuple[str, bool]] = {}
        client.finder_loaded.connect(self._on_finder_loaded)
        client.job_failed.connect(self._on_job_failed)
        client.model_loaded.connect(self._on_model_loaded)

    @property
    def is_loading(self) -> bool:
        return bool(self._loading)

    def description(self) -> str | None:
        """ "sam3.pt on cpu" for the loaded finder; None while none is."""
        info = self.info
        return f"{Path(info.checkpoint).name} on {info.device}" if info else None

    def load(self, checkpoint: str, device: str, *, remember: bool = False) -> int:
        """Load `checkpoint` in the worker; with `remember`, the settings take it once loaded."""
        first = self.info is None and not self._loading
        note = " (the first time takes a while)" if first else ""
        self._status.showMessage(f"Loading the finder {Path(checkpoint).name}…{note}")
        request_id = self._client.load_finder(checkpoint, device)
        self._loading[request_id] = (checkpoint, remember)
        return request_id

    def ensure_loaded(self) -> bool:
        """True when a finder is loaded or on its way; loads the remembered one if none is."""
        if self.info is not None or self._loading:
            return True
        remembered = self._settings.finder_checkpoint
        if not remembered:
            return False
        self.load(remembered, self._settings.device)
        return True

    @Slot(object)
    def _on_finder_loaded(self, info: FinderInfo) -> None:
        _checkpoint, remember = self._loading.pop(info.request_id, (info.checkpoint, False))
        self.info = info
        if remember:
            self._settings.finder_checkpoint = info.checkpoint
        name = Path(info.checkpoint).name
        self._status.showMessage(
            f"Finder ready: {name} on {info.device} ({info.parameters / 1e6:.0f} M parameters, "
            f"loaded in {info.seconds:.1f} s)",
            8000,
        )
        self.loaded.emit(info)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        """The finder follows the tracker to another device (Model > Device, Choose Model)."""
        if self.info is not None and not self._loading and info.device != self.info.device:
            self.load(self.info.checkpoint, info.device)

    @Slot(object)
    def _on_job_failed(self, error: JobError) -> None:
        if error.action != LOAD_ACTION or self._loading.pop(error.request_id, None) is None:
            return
        kept = f"keeping {self.description()}" if self.info else "no finder is loaded"
        reason = without_exception_name(error.message).splitlines()[0] if error.message else ""
        self._status.showMessage(f"Finder not loaded: {reason} ({kept})", 10000)
