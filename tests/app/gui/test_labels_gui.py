"""Labels in the window: the object list's drop-down, keys 1-9, the label editor, saving,
importing and exporting, driven with real mouse and key events."""

from __future__ import annotations

import json

import numpy as np
from conftest import HEIGHT, WIDTH, click_frame, make_window
from pycocotools import mask as mask_utils
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from app.gui.document.label_commands import EditLabelsCommand
from app.project.labels import Label

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _objects(qtbot, window, n: int) -> list[int]:
    for _ in range(n):
        qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    return [o.obj_id for o in window.document.objects()]


def _with_labels(window, *names: str) -> None:
    colors = (RED, GREEN, BLUE)
    labels = tuple(Label(n, colors[i % 3]) for i, n in enumerate(names))
    window.undo_stack.push(EditLabelsCommand(window.document, labels, {}))


def test_dropdown_lists_the_labels_and_sets_the_category(qtbot, opened):
    first, second = _objects(qtbot, opened, 2)
    _with_labels(opened, "car", "person", "dog")
    combo = opened.panel.category_editor(1)
    assert [combo.itemText(i) for i in range(combo.count())] == ["car", "person", "dog"]
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_F4)  # opens the list, as a click on its arrow does
    qtbot.waitUntil(combo.view().isVisible, timeout=3000)
    view = combo.view()
    rect = view.visualRect(combo.model().index(2, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: opened.document.object(second).category == "dog", timeout=3000)
    assert opened.document.object(first).category == ""
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert opened.document.object(second).category == ""


def test_typed_category_becomes_a_label_and_undo_takes_both_back(qtbot, opened):
    (obj,) = _objects(qtbot, opened, 1)
    _with_labels(opened, "car")
    combo = opened.panel.category_editor(0)
    line = combo.lineEdit()
    qtbot.mouseClick(line, Qt.MouseButton.LeftButton)
    line.selectAll()
    qtbot.keyClicks(line, "horse")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    doc = opened.document
    assert doc.object(obj).category == "horse"
    assert [label.name for label in doc.labels()] == ["car", "horse"]
    # The focused drop-down lists the new label too, and shows it as its own (its colour).
    assert [combo.itemText(i) for i in range(combo.count())] == ["car", "horse"]
    assert combo.currentIndex() == 1
    assert opened.undo_stack.undoText().startswith("Set object 1's category")
    opened.undo_stack.undo()
    assert doc.object(obj).category == "" and [label.name for label in doc.labels()] == ["car"]


def test_keys_1_to_9_label_the_selected_object(qtbot, opened):
    first, second = _objects(qtbot, opened, 2)  # the second is selected
    _with_labels(opened, "car", "person")
    qtbot.keyClick(opened.canvas, Qt.Key.Key_2)
    doc = opened.document
    assert doc.object(second).category == "person" and doc.object(first).category == ""
    combo = opened.panel.category_editor(1)
    assert combo.currentText() == "person"  # the drop-down follows
    qtbot.keyClick(opened.canvas, Qt.Key.Key_1)
    assert doc.object(second).category == "car"
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.object(second).category == "person"
    qtbot.keyClick(opened.canvas, Qt.Key.Key_5)
    assert doc.object(second).category == "person"
    assert "No label 5" in opened.statusBar().currentMessage()


def test_digits_typed_into_a_name_stay_in_the_name(qtbot, opened):
    (obj,) = _objects(qtbot, opened, 1)
    _with_labels(opened, "car", "person")
    view = opened.panel.view
    index = opened.panel.model.index(0, 1)
    rect = view.visualRect(index)
    _edit_cell(qtbot, view, rect)
    editor = view.indexWidget(index)
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "car 2")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    # The view commits an editor's text on Return through a queued call.
    qtbot.waitUntil(lambda: opened.document.object(obj).name == "car 2", timeout=3000)
    assert opened.document.object(obj).category == ""


def test_digit_keys_do_not_clash_with_other_shortcuts(window):
    taken = {
        s.toString()
        for action in window.actions._actions.values()  # every menu and toolbar action
        for s in action.shortcuts()
    }
    assert not taken & {str(k) for k in range(1, 10)}


def _edit_cell(qtbot, view, rect) -> None:
    """Click a cell, then F2 (the platform's edit key) opens its editor."""
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.keyClick(view, Qt.Key.Key_F2)


def _cell_editor(table, row: int):
    return table.indexWidget(table.model().index(row, 0))


def test_label_editor_adds_renames_and_reorders(qtbot, opened):
    (obj,) = _objects(qtbot, opened, 1)
    _with_labels(opened, "car", "person")
    qtbot.keyClick(opened.canvas, Qt.Key.Key_1)
    opened.labels.edit_labels.trigger()
    editor = opened.labels.editor
    qtbot.waitExposed(editor)
    table = editor.table
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    line = _cell_editor(table, 2)
    assert isinstance(line, QLineEdit) and line.text() == "label 3"
    line.selectAll()
    qtbot.keyClicks(line, "bicycle")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.item(2, 0).text() == "bicycle", timeout=3000)
    qtbot.mouseClick(editor.up_button, Qt.MouseButton.LeftButton)  # bicycle before person
    # Rename "car": its object follows.
    rect = table.visualItemRect(table.item(0, 0))
    _edit_cell(qtbot, table, rect)
    line = _cell_editor(table, 0)
    line.selectAll()
    qtbot.keyClicks(line, "automobile")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.item(0, 0).text() == "automobile", timeout=3000)
    # A used label cannot be removed.
    table.setCurrentCell(0, 0)
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    assert table.rowCount() == 3 and "another label" in editor.message.text()
    ok = editor.buttons.button(editor.buttons.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    doc = opened.document
    assert [label.name for label in doc.labels()] == ["automobile", "bicycle", "person"]
    assert doc.labels()[0].color == RED
    assert doc.object(obj).category == "automobile"
    opened.undo_stack.undo()
    assert [label.name for label in doc.labels()] == ["car", "person"]
    assert doc.object(obj).category == "car"


def test_label_editor_refuses_a_repeated_name(qtbot, opened):
    _with_labels(opened, "car", "person")
    opened.labels.edit_labels.trigger()
    editor = opened.labels.editor
    qtbot.waitExposed(editor)
    rect = editor.table.visualItemRect(editor.table.item(1, 0))
    _edit_cell(qtbot, editor.table, rect)
    line = _cell_editor(editor.table, 1)
    line.selectAll()
    qtbot.keyClicks(line, "car")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: editor.table.item(1, 0).text() == "car", timeout=3000)
    ok = editor.buttons.button(editor.buttons.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert editor.isVisible() and "listed twice" in editor.message.text()
    assert [label.name for label in opened.document.labels()] == ["car", "person"]
    editor.reject()


def test_labels_survive_save_and_reopen(qtbot, opened, settings, tmp_path):
    (obj,) = _objects(qtbot, opened, 1)
    _with_labels(opened, "car", "person", "unused")
    qtbot.keyClick(opened.canvas, Qt.Key.Key_2)
    path = str(tmp_path / "p.masklet")
    assert opened.save_project(path)
    opened.close()
    other = make_window(qtbot, settings, tmp_path / "recovery2")
    try:
        with qtbot.waitSignal(other.session.session_ready, timeout=10000):
            assert other.open_path(path)
        doc = other.document
        assert doc.labels() == (Label("car", RED), Label("person", GREEN), Label("unused", BLUE))
        assert doc.object(obj).category == "person"
        combo = other.panel.category_editor(0)
        assert combo.currentText() == "person" and combo.count() == 3
    finally:
        other.close()


def test_dialog_export_writes_the_label_list(qtbot, opened, tmp_path):
    _objects(qtbot, opened, 2)
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    _with_labels(opened, "truck", "car", "unused")
    qtbot.keyClick(opened.canvas, Qt.Key.Key_2)
    opened.actions.export.trigger()
    dialog = opened.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("coco"))
    out = tmp_path / "out.json"
    dialog.output.setText(str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=20000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    dialog.close()
    data = json.loads(out.read_text())
    # The first object has no label: it is an "object", as in every export.
    assert [c["name"] for c in data["categories"]] == ["truck", "car", "unused", "object"]
    assert [a["category_id"] for a in data["annotations"]] == [2]


def test_import_brings_the_files_categories_into_the_list(qtbot, opened, tmp_path):
    _with_labels(opened, "car")
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[40:60, 20:44] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    data = {
        "images": [{"id": 1, "file_name": "square/00002.jpg", "height": HEIGHT, "width": WIDTH}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "track_id": 3, "segmentation": rle}
        ],
        "categories": [
            {"id": 4, "name": "zebra"},
            {"id": 5, "name": "car"},
            {"id": 6, "name": "yak"},
        ],
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(data))
    opened.ask_import_path = lambda: str(path)
    qtbot.keyClick(opened.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    doc = opened.document
    assert opened.last_error is None
    assert [label.name for label in doc.labels()] == ["car", "zebra", "yak"]
    assert [o.category for o in doc.objects()] == ["car"]
    qtbot.keyClick(opened.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.objects() == [] and [label.name for label in doc.labels()] == ["car"]
