"""The Find bar (Ctrl+F): a phrase, Enter, progress, the score threshold, what was found.

A toolbar under the main one, hidden until asked for. It only reports what the user did
(`entered`, `threshold_changed`, the buttons); the Find controller (app/gui/find/controller.py)
decides what that means and tells the bar what to show.
"""

from __future__ import annotations

from collections.abc import Callable

import qtawesome
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QToolBar,
    QWidget,
)

from app.gui.find.review import DEFAULT_THRESHOLD
from app.gui.worker.finding import FIND_FLOOR

# The slider moves in hundredths, from the worker's floor up.
_STEPS = 100


class FindBar(QToolBar):
    """Phrase field, Find, progress, threshold slider, count, Accept all / Reject all."""

    entered = Signal()  # Enter in the phrase field, or the Find button
    accept_all_requested = Signal()
    reject_all_requested = Signal()
    threshold_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Find", parent)
        self.setObjectName("findBar")
        self.setMovable(False)
        icon = QLabel()
        icon.setPixmap(qtawesome.icon("mdi6.magnify-scan", color="#c8ccd4").pixmap(18, 18))
        self.addWidget(icon)
        self.phrase = QLineEdit()
        self.phrase.setObjectName("findPhrase")
        self.phrase.setPlaceholderText("Find objects: a phrase (e.g. bicycle), then Enter")
        self.phrase.setClearButtonEnabled(True)
        self.phrase.setMinimumWidth(220)
        self.phrase.returnPressed.connect(self.entered)
        self.addWidget(self.phrase)
        self.find_button = self._button("Find", "mdi6.magnify", self.entered.emit)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # the finder reports no steps: a busy bar
        self.progress.setMaximumWidth(90)
        self.progress.setTextVisible(False)
        # A toolbar shows and hides its widgets through their actions.
        self._progress_action = self.addWidget(self.progress)
        self._progress_action.setVisible(False)
        self._add_threshold()
        self.count = QLabel("")
        self.count.setObjectName("findCount")
        self.addWidget(self.count)
        self.accept_all = self._button("Accept all", "mdi6.check-all", self.accept_all_requested)
        self.accept_all.setToolTip("Accept every proposal shown that overlaps no object (Enter)")
        self.reject_all = self._button("Reject all", "mdi6.close", self.reject_all_requested)
        self.reject_all.setToolTip("Reject every proposal shown (Esc)")
        self.message = QLabel("")
        self.message.setObjectName("findMessage")
        self.message.setStyleSheet("color: #e0b050; padding-left: 6px;")
        self.addWidget(self.message)
        self.set_reviewing(False)

    def _button(self, text: str, icon: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(qtawesome.icon(icon), text)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        self.addWidget(button)
        return button

    def _add_threshold(self) -> None:
        self.addWidget(QLabel("  Score over"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("findThreshold")
        self.slider.setRange(round(FIND_FLOOR * _STEPS), _STEPS - 1)
        self.slider.setValue(round(DEFAULT_THRESHOLD * _STEPS))
        self.slider.setFixedWidth(120)
        self.slider.setToolTip("Show proposals scoring over this (the model does not run again)")
        self.addWidget(self.slider)
        self.threshold_label = QLabel(f"{DEFAULT_THRESHOLD:.2f}")
        self.addWidget(self.threshold_label)
        self.slider.valueChanged.connect(self._on_slider)

    def _on_slider(self, value: int) -> None:
        threshold = value / _STEPS
        self.threshold_label.setText(f"{threshold:.2f}")
        self.threshold_changed.emit(threshold)

    @property
    def threshold(self) -> float:
        return self.slider.value() / _STEPS

    def set_threshold(self, threshold: float) -> None:
        self.slider.setValue(round(threshold * _STEPS))

    # ---- what the controller shows ---------------------------------------------------------
    def open(self) -> None:
        self.show()
        self.phrase.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.phrase.selectAll()

    @property
    def running(self) -> bool:
        """Whether the progress shows (a find is running)."""
        return self._progress_action.isVisible()

    def set_running(self, running: bool) -> None:
        self._progress_action.setVisible(running)
        self.find_button.setEnabled(not running)

    def set_reviewing(self, reviewing: bool) -> None:
        self.accept_all.setEnabled(reviewing)
        self.reject_all.setEnabled(reviewing)

    def say(self, text: str) -> None:
        """One line beside the controls ("" clears it)."""
        self.message.setText(text)
