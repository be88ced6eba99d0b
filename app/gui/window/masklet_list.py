"""The masklet (object) list: a table model over the document and the panel that shows it.

Columns: visibility checkbox with the colour swatch, editable name, and the category: a
drop-down of the project's labels that also takes free text (app/gui/window/labels_ui.py).
Every edit goes through the undo stack; the selected row is the active object, the one
that receives canvas clicks.
"""

from __future__ import annotations

from typing import Any

import qtawesome
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPixmap, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHBoxLayout,
    QHeaderView,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.document.annotations import AnnotationDocument
from app.gui.document.commands import EditObjectCommand
from app.gui.document.label_commands import set_category
from app.gui.window.labels_ui import CategoryDelegate

VISIBLE, NAME, CATEGORY = range(3)
_HEADERS = ("", "Name", "Category")
Index = QModelIndex | QPersistentModelIndex


class ObjectTableModel(QAbstractTableModel):
    """Rows are the document's objects in order; edits become undo commands."""

    def __init__(self, document: AnnotationDocument, undo: QUndoStack) -> None:
        super().__init__()
        self._doc = document
        self._undo = undo
        self._ids: list[int] = []
        document.objects_changed.connect(self._on_objects_changed)
        document.object_changed.connect(self._on_object_changed)
        document.labels_changed.connect(self._on_labels_changed)
        self._on_objects_changed()

    def _on_objects_changed(self) -> None:
        self.beginResetModel()
        self._ids = [o.obj_id for o in self._doc.objects()]
        self.endResetModel()

    def _on_object_changed(self, obj_id: int) -> None:
        if obj_id in self._ids:
            row = self._ids.index(obj_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, CATEGORY))

    def _on_labels_changed(self) -> None:
        if self._ids:  # the drop-downs list the labels
            self.dataChanged.emit(self.index(0, CATEGORY), self.index(len(self._ids) - 1, CATEGORY))

    def obj_id(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, obj_id: int) -> int:
        return self._ids.index(obj_id)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        obj = self._doc.object(self._ids[index.row()])
        column = index.column()
        if column == VISIBLE:
            if role == Qt.ItemDataRole.CheckStateRole:
                return Qt.CheckState.Checked if obj.visible else Qt.CheckState.Unchecked
            if role == Qt.ItemDataRole.DecorationRole:
                return _swatch(obj.color)
            if role == Qt.ItemDataRole.ToolTipRole:
                return "Show or hide this object's mask; double-click the swatch for a colour"
        elif role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return obj.name if column == NAME else obj.category
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == VISIBLE:
            return base | Qt.ItemFlag.ItemIsUserCheckable
        return base | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid():
            return False
        obj = self._doc.object(self._ids[index.row()])
        column = index.column()
        if column == VISIBLE and role == Qt.ItemDataRole.CheckStateRole:
            visible = Qt.CheckState(value) == Qt.CheckState.Checked
            verb = "Show" if visible else "Hide"
            self._undo.push(
                EditObjectCommand(self._doc, obj.obj_id, f"{verb} {obj.name}", visible=visible)
            )
            return True
        if role == Qt.ItemDataRole.EditRole and column == CATEGORY:
            command = set_category(self._doc, obj.obj_id, str(value))
            if command is not None:
                self._undo.push(command)
            return command is not None
        if role == Qt.ItemDataRole.EditRole and column == NAME:
            text = str(value).strip()
            if not text or text == obj.name:
                return False
            self._undo.push(
                EditObjectCommand(self._doc, obj.obj_id, f"Rename {obj.name}", name=text)
            )
            return True
        return False


def _swatch(color: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


class MaskletPanel(QWidget):
    """The object list with "new" and "delete" buttons; selection follows the active object."""

    new_object_requested = Signal()
    delete_object_requested = Signal(int)

    def __init__(
        self, document: AnnotationDocument, undo: QUndoStack, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._undo = undo
        self.model = ObjectTableModel(document, undo)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.view.verticalHeader().hide()
        self.category_delegate = CategoryDelegate(document, self.view)
        self.view.setItemDelegateForColumn(CATEGORY, self.category_delegate)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(VISIBLE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(CATEGORY, QHeaderView.ResizeMode.Stretch)
        self.new_button = _tool_button("mdi6.plus-circle-outline", "New object (N)")
        self.delete_button = _tool_button("mdi6.delete-outline", "Delete object (Del)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.view)
        self.new_button.clicked.connect(self.new_object_requested)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.view.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.view.doubleClicked.connect(self._on_double_clicked)
        self.model.modelReset.connect(self._on_active_object_changed)
        # The drop-downs stay open as editors; a reset closes them, so they are reopened.
        self.model.modelReset.connect(self._open_category_editors)
        document.active_object_changed.connect(self._on_active_object_changed)

    def _open_category_editors(self) -> None:
        for row in range(self.model.rowCount()):
            self.view.openPersistentEditor(self.model.index(row, CATEGORY))

    def category_editor(self, row: int) -> QWidget:
        """The drop-down of one row (tests drive it with real events)."""
        return self.view.indexWidget(self.model.index(row, CATEGORY))

    def _on_delete_clicked(self) -> None:
        if self._doc.active_object is not None:
            self.delete_object_requested.emit(self._doc.active_object)

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._doc.set_active_object(self.model.obj_id(current.row()))

    def _on_active_object_changed(self, *_args: object) -> None:
        active = self._doc.active_object
        selection = self.view.selectionModel()
        if active is None or not self._doc.has_object(active):
            selection.clearSelection()
            return
        index = self.model.index(self.model.row_of(active), NAME)
        if selection.currentIndex().row() != index.row():
            flags = (
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
            )
            selection.setCurrentIndex(index, flags)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        if index.column() != VISIBLE:
            return
        obj = self._doc.object(self.model.obj_id(index.row()))
        color = QColorDialog.getColor(QColor(*obj.color), self, f"Colour of {obj.name}")
        if color.isValid():
            rgb = (color.red(), color.green(), color.blue())
            self._undo.push(
                EditObjectCommand(self._doc, obj.obj_id, f"Recolour {obj.name}", color=rgb)
            )


def _tool_button(icon: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setIcon(qtawesome.icon(icon))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button
