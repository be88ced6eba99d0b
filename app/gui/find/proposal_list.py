"""The proposals on show, listed for review: one row each, with Accept and Reject.

Rows are best first, as the canvas tags them. Selecting a row highlights its proposal on
the canvas; Enter in the list accepts all, Delete rejects the selected one. The list only
reports; the Find controller acts.
"""

from __future__ import annotations

import qtawesome
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.find.proposal_layer import ShownProposal


class ProposalRow(QWidget):
    """One proposal: its name and score, what it overlaps, and its two buttons."""

    def __init__(self, title: str, shown: ShownProposal) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 4, 2)
        self.label = QLabel(f"{title} · {shown.tag}")
        if shown.overlaps:
            self.label.setStyleSheet("color: #a0a4ac;")
        row.addWidget(self.label, 1)
        self.accept = QToolButton()
        self.accept.setIcon(qtawesome.icon("mdi6.check", color="#5fd37a"))
        self.accept.setToolTip("Accept: a new object with this mask as its keyframe")
        self.reject = QToolButton()
        self.reject.setIcon(qtawesome.icon("mdi6.close", color="#f06060"))
        self.reject.setToolTip("Reject: not proposed again on this frame for this phrase")
        row.addWidget(self.accept)
        row.addWidget(self.reject)


class _Rows(QListWidget):
    enter_pressed = Signal()
    delete_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.enter_pressed.emit()
        elif event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_pressed.emit()
        else:
            super().keyPressEvent(event)


class ProposalList(QWidget):
    """Lists proposals; reports accept/reject of one (by rank), Enter and selection."""

    accept_requested = Signal(int)
    reject_requested = Signal(int)
    accept_all_requested = Signal()
    selection_changed = Signal(int)  # rank, -1 for none

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.heading = QLabel("No proposals")
        self.heading.setContentsMargins(8, 4, 8, 2)
        column.addWidget(self.heading)
        self.rows = _Rows()
        self.rows.setObjectName("proposalRows")
        column.addWidget(self.rows, 1)
        self._ranks: list[int] = []
        self.rows.enter_pressed.connect(self.accept_all_requested)
        self.rows.delete_pressed.connect(self._on_delete)
        self.rows.currentRowChanged.connect(self._on_current_row)

    def show_proposals(self, title: str, proposals: list[ShownProposal], heading: str) -> None:
        selected = self.selected_rank()
        self.rows.blockSignals(True)
        self.rows.clear()
        self._ranks = []
        for shown in proposals:
            rank = shown.proposal.rank
            row = ProposalRow(title, shown)
            row.accept.clicked.connect(lambda _=False, r=rank: self.accept_requested.emit(r))
            row.reject.clicked.connect(lambda _=False, r=rank: self.reject_requested.emit(r))
            item = QListWidgetItem()
            item.setSizeHint(row.sizeHint())
            self.rows.addItem(item)
            self.rows.setItemWidget(item, row)
            self._ranks.append(rank)
        if selected in self._ranks:
            self.rows.setCurrentRow(self._ranks.index(selected))
        self.rows.blockSignals(False)
        self.heading.setText(heading)

    def focus_first(self) -> None:
        self.rows.setFocus()
        if self.rows.count() and self.rows.currentRow() < 0:
            self.rows.setCurrentRow(0)

    def row_widget(self, index: int) -> ProposalRow:
        widget = self.rows.itemWidget(self.rows.item(index))
        assert isinstance(widget, ProposalRow)
        return widget

    def selected_rank(self) -> int:
        row = self.rows.currentRow()
        return self._ranks[row] if 0 <= row < len(self._ranks) else -1

    def _on_current_row(self, row: int) -> None:
        self.selection_changed.emit(self._ranks[row] if 0 <= row < len(self._ranks) else -1)

    def _on_delete(self) -> None:
        rank = self.selected_rank()
        if rank >= 0:
            self.reject_requested.emit(rank)
