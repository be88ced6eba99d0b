"""Status bar widgets: engine facts (device, model, cache) and propagation progress."""

from __future__ import annotations

import math

import qtawesome
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from app.gui.worker.jobs import EngineStats, Progress
from app.headless.eta import ESTIMATING


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = max(int(round(seconds)), 0)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_rate(fps: float) -> str:
    """ "2.9 frames/s", "0.25 frames/s", or "31 s/frame" where that would read 0.0 frames/s
    (a large model on a busy CPU)."""
    if fps >= 1:
        return f"{fps:.1f} frames/s"
    if fps >= 0.1:
        return f"{fps:.2f} frames/s"
    return f"{1 / fps:.0f} s/frame" if fps > 0 else "0 frames/s"


class EngineStatus(QWidget):
    """ "cpu · sam2.1-tiny · bf16 · cache 120.0 MB" with icons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        self.device = _icon_label("mdi6.chip", "no device")
        self.model = _icon_label("mdi6.brain", "no model")
        # Which precision the model computes in depends on the model's device: until a
        # model is loaded there is none to show (it said "bf16" with no model at all).
        self.precision = _icon_label("mdi6.speedometer", "")
        self.cache = _icon_label("mdi6.memory", "cache 0 B")
        for pair in (self.device, self.model, self.precision, self.cache):
            layout.addWidget(pair[0])
            layout.addWidget(pair[1])
        self.device[1].setToolTip("Device the model runs on")
        self.model[1].setToolTip("Model variant")
        self.precision[1].setToolTip("Precision the model computes in (Model > Precision)")
        self.cache[1].setToolTip("Memory used by cached frame embeddings")
        for widget in self.precision:
            widget.hide()

    def set_model(self, variant: str, device: str) -> None:
        self.model[1].setText(variant)
        self.device[1].setText(device)

    def set_stats(self, stats: EngineStats) -> None:
        if stats.variant:
            self.set_model(stats.variant, stats.device)
        self.cache[1].setText(f"cache {human_bytes(stats.cache_bytes)}")
        if stats.precision and stats.variant:
            self.precision[1].setText(stats.precision)
            self.precision[1].setToolTip(stats.precision_note)
            for widget in self.precision:
                widget.show()


class PropagationProgress(QWidget):
    """Progress bar with frames/s and ETA, a Follow toggle and a cancel button; hidden when
    idle. `follow` gets its action from `app.gui.timeline.follow.FollowController`."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.rate = QLabel()
        self.cancel = QToolButton()
        self.cancel.setIcon(qtawesome.icon("mdi6.close-circle-outline"))
        self.cancel.setToolTip("Cancel propagation (Esc)")
        self.cancel.setAutoRaise(True)
        self.follow = QToolButton()
        self.follow.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.follow.setAutoRaise(True)
        layout.addWidget(QLabel("Propagating"))
        layout.addWidget(self.bar)
        layout.addWidget(self.rate)
        layout.addWidget(self.follow)
        layout.addWidget(self.cancel)
        self._cancelling = False
        self.cancel.clicked.connect(self.show_cancelling)
        self.cancel.clicked.connect(self.cancel_requested)
        self.hide()

    def start(self, direction: str) -> None:
        self._cancelling = False
        self.cancel.setEnabled(True)
        self.bar.setRange(0, 0)
        self.rate.setText(f"{direction}…")
        self.show()

    def set_progress(self, progress: Progress) -> None:
        self.bar.setRange(0, max(progress.total, 1))
        self.bar.setValue(min(progress.done, progress.total))
        if self._cancelling:
            return  # the frame in flight finishes first: keep saying so until it has
        if progress.recent_fps <= 0:
            # The first frames cost less than the rest (app.headless.eta): no rate from them.
            self.rate.setText(f"frames/s and ETA {ESTIMATING}")
            return
        self.rate.setText(f"{format_rate(progress.recent_fps)} · ETA {format_eta(progress.eta_s)}")

    def show_cancelling(self) -> None:
        """Say "Cancelling…" at once: the worker stops only after the frame in progress."""
        if self.isHidden() or self._cancelling:
            return
        self._cancelling = True
        self.cancel.setEnabled(False)
        self.rate.setText("Cancelling…")

    def finish(self) -> None:
        self.hide()


def _icon_label(icon: str, text: str) -> tuple[QLabel, QLabel]:
    picture = QLabel()
    picture.setPixmap(qtawesome.icon(icon, color="#8a8f98").pixmap(14, 14))
    return picture, QLabel(text)
