"""Picking an object's category from the label list: the object list's drop-down, keys 1-9,
and Edit > Labels… (the label editor).

The drop-down is an editable combo box, so free text still works: a name that is not a
label becomes one (app/gui/document/label_commands.py). Keys 1-9 give the selected object the
label of that position; they are window shortcuts, so typing a digit into a name or a
spin box still types it (Qt lets the focused editor have printable keys first).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPixmap, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QMainWindow,
    QMenu,
    QStatusBar,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.gui.dialogs.label_editor import LabelEditor
from app.gui.document.annotations import AnnotationDocument
from app.gui.document.label_commands import EditLabelsCommand, set_category

LABEL_KEYS = 9
Index = QModelIndex | QPersistentModelIndex


def swatch(color: tuple[int, int, int], size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


def fill_label_combo(combo: QComboBox, doc: AnnotationDocument, current: str) -> None:
    """The labels with their colours (numbered for keys 1-9), `current` shown."""
    combo.blockSignals(True)
    combo.clear()
    for i, label in enumerate(doc.labels()):
        combo.addItem(swatch(label.color), label.name, label.name)
        if i < LABEL_KEYS:
            combo.setItemData(i, f"Key {i + 1}", Qt.ItemDataRole.ToolTipRole)
    combo.setEditText(current)
    index = combo.findData(current)
    if index >= 0:
        combo.setCurrentIndex(index)
    combo.blockSignals(False)


class CategoryDelegate(QStyledItemDelegate):
    """The category column's editor: an editable drop-down of the project's labels."""

    def __init__(self, document: AnnotationDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc = document

    def createEditor(  # noqa: N802 - Qt API
        self, parent: QWidget, _option: QStyleOptionViewItem, _index: Index
    ) -> QWidget:
        combo = QComboBox(parent)
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.setToolTip("The object's label: pick one, or type a new one (keys 1-9 pick)")
        combo.activated.connect(lambda _i: self.commitData.emit(combo))
        combo.lineEdit().editingFinished.connect(lambda: self.commitData.emit(combo))
        return combo

    def setEditorData(self, editor: QWidget, index: Index) -> None:  # noqa: N802 - Qt API
        assert isinstance(editor, QComboBox)
        # Not while its list is open: the user is choosing from it.
        if not editor.view().isVisible():
            fill_label_combo(editor, self._doc, str(index.data(Qt.ItemDataRole.EditRole)))

    def setModelData(  # noqa: N802 - Qt API
        self, editor: QWidget, model: QAbstractItemModel, index: Index
    ) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


class LabelControls:
    """Keys 1-9, Edit > Labels…, and the status messages that go with them."""

    def __init__(
        self,
        window: QMainWindow,
        document: AnnotationDocument,
        undo: QUndoStack,
        status: QStatusBar,
    ) -> None:
        self._window, self._doc, self._undo, self._status = window, document, undo, status
        self.key_actions: list[QAction] = []
        for k in range(1, LABEL_KEYS + 1):
            action = QAction(f"Label {k}", window)
            action.setShortcut(QKeySequence(str(k)))
            action.triggered.connect(lambda _checked=False, k=k: self.apply_label(k))
            window.addAction(action)
            self.key_actions.append(action)
        self.edit_labels = QAction("&Labels…", window)
        self.edit_labels.setToolTip("Edit the project's label list (names and colours)")
        self.edit_labels.triggered.connect(self.open_editor)
        self.editor: LabelEditor | None = None
        menu = _menu(window, "&Edit")
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.edit_labels)

    def apply_label(self, k: int) -> None:
        """Give the selected object the k-th label (1-based)."""
        obj_id, labels = self._doc.active_object, self._doc.labels()
        if obj_id is None:
            self._status.showMessage("Select an object to give it a label", 4000)
            return
        if k > len(labels):
            self._status.showMessage(
                f"No label {k}: the project has {len(labels)} (Edit > Labels… adds some)", 4000
            )
            return
        command = set_category(self._doc, obj_id, labels[k - 1].name)
        if command is not None:
            self._undo.push(command)
        self._status.showMessage(f"{self._doc.object(obj_id).name}: {labels[k - 1].name}", 3000)

    def open_editor(self) -> None:
        if self._doc.num_frames == 0:
            self._status.showMessage("Open a video before editing its labels", 4000)
            return
        used = {o.category for o in self._doc.objects()}
        self.editor = LabelEditor(self._doc.labels(), used, self._window)
        self.editor.accepted.connect(self._on_editor_accepted)
        self.editor.open()

    def _on_editor_accepted(self) -> None:
        editor = self.editor
        if editor is None:
            return
        labels, renamed = editor.result_labels()
        if labels != self._doc.labels():
            self._undo.push(EditLabelsCommand(self._doc, labels, renamed))


def _menu(window: QMainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.text() == title and action.menu() is not None:
            return action.menu()
    return None
