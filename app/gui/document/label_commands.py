"""Undoable edits of the label list and of an object's category (see app/project/labels.py).

A category typed that is not yet a label becomes one in the same undo step, so undo
takes back both; renaming a label in the editor renames the category of the objects
that use it.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from app.gui.document.annotations import AnnotationDocument
from app.project.labels import Label, with_names


class SetCategoryCommand(QUndoCommand):
    """Give one object a category; a new name is appended to the label list."""

    def __init__(self, doc: AnnotationDocument, obj_id: int, category: str) -> None:
        category = category.strip()
        obj = doc.object(obj_id)
        super().__init__(f"Set {obj.name}'s category to {category or 'none'}")
        self._doc, self._obj_id = doc, obj_id
        self._old_category, self._new_category = obj.category, category
        self._old_labels = doc.labels()
        self._new_labels = with_names(self._old_labels, [category])

    def redo(self) -> None:
        self._doc.set_labels(self._new_labels)
        self._doc.update_object(self._obj_id, category=self._new_category)

    def undo(self) -> None:
        if self._doc.has_object(self._obj_id):
            self._doc.update_object(self._obj_id, category=self._old_category)
        self._doc.set_labels(self._old_labels)


def set_category(doc: AnnotationDocument, obj_id: int, category: str) -> QUndoCommand | None:
    """The command giving `obj_id` the category `category`; None when nothing would change."""
    obj = doc.object(obj_id)
    name = category.strip()
    known = any(label.name == name for label in doc.labels())
    if name == obj.category and (known or not name):
        return None
    return SetCategoryCommand(doc, obj_id, name)


class EditLabelsCommand(QUndoCommand):
    """Replace the label list (the label editor's OK); `renamed` maps old names to new ones,
    and every object of an old name gets the new one."""

    def __init__(
        self, doc: AnnotationDocument, labels: tuple[Label, ...], renamed: dict[str, str]
    ) -> None:
        super().__init__("Edit labels")
        self._doc = doc
        self._old_labels, self._new_labels = doc.labels(), tuple(labels)
        self._recategorised = {
            o.obj_id: (o.category, renamed[o.category])
            for o in doc.objects()
            if o.category in renamed and renamed[o.category] != o.category
        }

    def redo(self) -> None:
        self._doc.set_labels(self._new_labels)
        for obj_id, (_old, new) in self._recategorised.items():
            if self._doc.has_object(obj_id):
                self._doc.update_object(obj_id, category=new)

    def undo(self) -> None:
        for obj_id, (old, _new) in self._recategorised.items():
            if self._doc.has_object(obj_id):
                self._doc.update_object(obj_id, category=old)
        self._doc.set_labels(self._old_labels)


class AddLabelsCommand(QUndoCommand):
    """Another command (an import) whose undo step also adds labels to the list."""

    def __init__(self, doc: AnnotationDocument, inner: QUndoCommand, names: list[str]) -> None:
        super().__init__(inner.text())
        # Held as a Python reference, not a Qt child, so its overrides stay alive.
        self._doc, self._inner = doc, inner
        self._old_labels = doc.labels()
        self._new_labels = with_names(self._old_labels, names)

    def redo(self) -> None:
        self._doc.set_labels(self._new_labels)
        self._inner.redo()

    def undo(self) -> None:
        self._inner.undo()
        self._doc.set_labels(self._old_labels)
