"""Edit > Labels…: the project's label list, one row per label (name, colour), in order.

Names are edited in place (a renamed label renames the category of its objects), colours
by double-clicking the swatch; Add, Remove, Up and Down change the list. A label that
objects use cannot be removed (give them another one first), so no object is left with a
category outside the list. OK applies everything as one undo step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.project.labels import Label, label_color

NAME, COLOR = range(2)
_ORIGINAL = Qt.ItemDataRole.UserRole  # the label's name when the editor opened; None if new
_RGB = Qt.ItemDataRole.UserRole + 1


class LabelEditor(QDialog):
    def __init__(
        self, labels: tuple[Label, ...], used: set[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labels")
        self._used = used
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Name (keys 1-9 pick the first nine)", "Colour"])
        self.table.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(24)
        for label in labels:
            self._append(label.name, label.color, original=label.name)
        self.table.cellDoubleClicked.connect(self._on_double_clicked)
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        row = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.add_button.clicked.connect(self._on_add)
        self.remove_button.clicked.connect(self._on_remove)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(1))
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)
        self.resize(420, 360)

    def _append(self, name: str, color: tuple[int, int, int], *, original: str | None) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(name)
        item.setData(_ORIGINAL, original)
        self.table.setItem(row, NAME, item)
        self.table.setItem(row, COLOR, _color_item(color))
        return row

    def _on_add(self) -> None:
        names = {self._name(r) for r in range(self.table.rowCount())}
        n = self.table.rowCount() + 1
        while f"label {n}" in names:
            n += 1
        row = self._append(f"label {n}", label_color(self.table.rowCount()), original=None)
        self.table.setCurrentCell(row, NAME)
        self.table.editItem(self.table.item(row, NAME))

    def _on_remove(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            return
        original = self.table.item(row, NAME).data(_ORIGINAL)
        if original in self._used:
            self.message.setText(
                f"“{original}” is the category of some objects; give them another label first."
            )
            return
        self.table.removeRow(row)
        self.message.clear()

    def _move(self, step: int) -> None:
        row = self.table.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.table.rowCount():
            return
        items = [self.table.takeItem(row, c) for c in (NAME, COLOR)]
        self.table.removeRow(row)
        self.table.insertRow(target)
        for column, item in zip((NAME, COLOR), items, strict=True):
            self.table.setItem(target, column, item)
        self.table.setCurrentCell(target, NAME)

    def _on_double_clicked(self, row: int, column: int) -> None:
        if column != COLOR:
            return
        item = self.table.item(row, COLOR)
        color = QColorDialog.getColor(QColor(*item.data(_RGB)), self, "Label colour")
        if color.isValid():
            self.table.setItem(row, COLOR, _color_item((color.red(), color.green(), color.blue())))

    def _name(self, row: int) -> str:
        return self.table.item(row, NAME).text().strip()

    def problem(self) -> str | None:
        """Why the list cannot be applied (an empty or repeated name), or None."""
        names = [self._name(r) for r in range(self.table.rowCount())]
        if not all(names):
            return "Every label needs a name."
        repeated = sorted({n for n in names if names.count(n) > 1})
        return f"“{repeated[0]}” is listed twice." if repeated else None

    def _on_ok(self) -> None:
        problem = self.problem()
        if problem is not None:
            self.message.setText(problem)
            return
        self.accept()

    def result_labels(self) -> tuple[tuple[Label, ...], dict[str, str]]:
        """The edited list, and {name when opened: name now} of the labels kept."""
        labels, renamed = [], {}
        for row in range(self.table.rowCount()):
            name = self._name(row)
            rgb = self.table.item(row, COLOR).data(_RGB)
            labels.append(Label(name, (int(rgb[0]), int(rgb[1]), int(rgb[2]))))
            original = self.table.item(row, NAME).data(_ORIGINAL)
            if original is not None:
                renamed[original] = name
        return tuple(labels), renamed


def _color_item(color: tuple[int, int, int]) -> QTableWidgetItem:
    pixmap = QPixmap(28, 14)
    pixmap.fill(QColor(*color))
    item = QTableWidgetItem(QIcon(pixmap), "")
    item.setData(_RGB, list(color))
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    item.setToolTip("Double-click to change the colour")
    return item
