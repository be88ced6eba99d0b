"""Model > Precision: Auto / Exact / Fast, remembered in the settings, applied to the worker.

The worker switches the running session between requests, so a choice takes effect on
the next click or propagation without reloading anything; masks already computed stay.
Once the worker has applied a choice, its one-line reason (for example that bf16 will
not be faster on this CPU, and by how much it measured) is shown in the status bar.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QStatusBar

from app.gui.settings import AppSettings
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import EngineStats

# (setting, menu text, tooltip)
CHOICES: tuple[tuple[str, str, str], ...] = (
    (
        "auto",
        "&Auto",
        "bf16 on CUDA and on CPUs where bf16 measures faster than float32, float32 elsewhere",
    ),
    ("exact", "&Exact (float32)", "float32: the reference model's results"),
    (
        "fast",
        "&Fast (bf16)",
        "bf16: about twice as fast where the hardware's bf16 pays; "
        "slower than float32 where it does not (the status bar says which)",
    ),
)

_MESSAGE_MS = 10_000


class PrecisionMenu(QObject):
    """Fills `menu` with the three radio choices and keeps worker and settings in step."""

    def __init__(
        self,
        menu: QMenu,
        *,
        settings: AppSettings,
        client: WorkerClient,
        status_bar: QStatusBar,
    ) -> None:
        super().__init__(menu)
        self._settings = settings
        self._client = client
        self._status_bar = status_bar
        # The choice to announce once the worker has it in effect; "" for none.
        self._announce = ""
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        menu.setToolTipsVisible(True)
        self._actions: dict[str, QAction] = {}
        for key, text, tip in CHOICES:
            action = QAction(text, menu)
            action.setCheckable(True)
            action.setToolTip(tip)
            action.setData(key)
            self.group.addAction(action)
            menu.addAction(action)
            self._actions[key] = action
        self._actions[settings.precision].setChecked(True)
        self.group.triggered.connect(self._on_triggered)
        client.stats_changed.connect(self._on_stats_changed)
        # Queued before any model load, so the first session opens in this precision.
        client.set_precision(settings.precision)

    def action(self, key: str) -> QAction:
        return self._actions[key]

    def _on_triggered(self, action: QAction) -> None:
        key = str(action.data())
        self._settings.precision = key
        self._announce = key
        self._client.set_precision(key)

    def _on_stats_changed(self, stats: EngineStats) -> None:
        # Stats sent before the worker took the new choice still describe the old one
        # (Exact then Fast said "float32: exact"): wait for the one that has it in effect.
        if self._announce and stats.precision_choice == self._announce and stats.precision_note:
            self._announce = ""
            self._status_bar.showMessage(f"Precision: {stats.precision_note}", _MESSAGE_MS)
