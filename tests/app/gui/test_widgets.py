"""Document, commands, overlay, timeline spans, object list, settings, help, drag and drop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import click_frame
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import QApplication

from app.gui.actions import BRUSH_ROWS, FIND_ROWS, LABEL_ROWS, SPECS, shortcut_table
from app.gui.canvas.overlay import compose_overlay, frame_to_qimage, rgba_to_qimage
from app.gui.dialogs.help_dialog import HelpDialog
from app.gui.document.annotations import AnnotationDocument, MaskState
from app.gui.document.commands import DeleteObjectCommand, NewObjectCommand, add_point, clear_frame
from app.gui.timeline.widgets import TimelineTracks, spans, timecode


@pytest.fixture
def doc(qtbot):
    d = AnnotationDocument()
    d.reset(video_path="v.mp4", num_frames=30, video_size=(40, 50), fps=10)
    return d


def test_document_masks_states_and_signals(qtbot, doc):
    doc.insert_object(doc.default_object(doc.next_object_id()))
    mask = np.zeros((40, 50), bool)
    mask[5:10, 5:10] = True
    with qtbot.waitSignal(doc.masks_changed) as blocker:
        doc.set_mask(3, 1, mask)
    assert blocker.args == [3]
    doc.set_mask(4, 1, None)
    assert doc.mask_state(3, 1) == MaskState.MASK
    assert doc.mask_state(4, 1) == MaskState.ABSENT
    assert doc.mask_state(5, 1) == MaskState.NONE
    assert np.array_equal(doc.mask(3, 1), mask)
    with pytest.raises(ValueError, match="outside"):
        doc.set_mask(30, 1, mask)
    with pytest.raises(ValueError, match="no object"):
        doc.set_active_object(9)


def test_commands_undo_redo_object_lifecycle(qtbot, doc):
    undo = QUndoStack()
    obj = doc.default_object(doc.next_object_id())
    undo.push(NewObjectCommand(doc, obj))
    undo.push(add_point(doc, 2, obj.obj_id, 10, 12, 1))
    doc.set_mask(2, obj.obj_id, np.ones((40, 50), bool))
    undo.push(DeleteObjectCommand(doc, obj.obj_id))
    assert doc.objects() == []
    undo.undo()
    assert doc.keyframes(obj.obj_id) == [2] and doc.mask(2, obj.obj_id).all()
    assert doc.active_object == obj.obj_id
    undo.push(clear_frame(doc, 2))
    assert doc.keyframes(obj.obj_id) == []
    undo.undo()
    undo.undo()
    assert doc.prompts(2, obj.obj_id).is_empty()
    undo.undo()
    assert doc.objects() == []
    undo.redo()
    assert doc.active_object == obj.obj_id


def test_overlay_fill_and_outline():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    rgba = compose_overlay((20, 20), [(mask, (255, 0, 0))], opacity=0.5)
    assert tuple(rgba[10, 10]) == (255, 0, 0, 128)
    assert tuple(rgba[5, 10]) == (255, 0, 0, 255)  # outline is opaque
    assert rgba[0, 0, 3] == 0
    image = rgba_to_qimage(rgba)
    assert (image.width(), image.height()) == (20, 20)
    assert image.pixelColor(10, 5).alpha() == 255
    assert frame_to_qimage(np.zeros((4, 6, 3), np.uint8)).width() == 6
    with pytest.raises(ValueError, match="opacity"):
        compose_overlay((20, 20), [], opacity=2)
    with pytest.raises(ValueError, match="RGB"):
        frame_to_qimage(np.zeros((4, 6), np.uint8))


def test_spans_and_timecode():
    track = np.array([0, 1, 1, 0, 2, 2, 2, 1], np.int8)
    assert spans(track, 1).tolist() == [[1, 3], [7, 8]]
    assert spans(track, 2).tolist() == [[4, 7]]
    assert timecode(0, 25) == "00:00:00.000"
    assert timecode(25 * 3661 + 7, 25) == "01:01:01.280"


def test_timeline_paints_100k_frames_by_spans(qtbot):
    doc = AnnotationDocument()
    doc.reset(video_path=None, num_frames=100_000, video_size=(8, 8), fps=30)
    obj = doc.default_object(doc.next_object_id())
    doc.insert_object(obj)
    track = doc._states[obj.obj_id]
    track[1000:60000] = MaskState.MASK
    track[60000:70000] = MaskState.ABSENT
    tracks = TimelineTracks(doc)
    qtbot.addWidget(tracks)
    tracks.resize(800, 40)
    assert len(spans(doc.state_track(obj.obj_id), MaskState.MASK)) == 1
    image = tracks.grab().toImage()
    row_y = int(tracks.row_rect(0).center().y())
    mid = int(tracks.x_of(30000))
    absent = int(tracks.x_of(65000))
    assert image.pixelColor(mid, row_y).red() > 150  # object colour (red)
    grey = image.pixelColor(absent, row_y)
    assert abs(grey.red() - grey.blue()) < 20 and grey.red() > 90
    assert tracks.frame_at(tracks.x_of(50000)) == pytest.approx(50000, abs=200)


def test_object_list_edits_go_through_undo(qtbot, opened):
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    model = opened.panel.model
    obj = opened.document.objects()[0]
    assert model.setData(model.index(0, 1), "dog")
    assert model.setData(model.index(0, 2), "animal")
    assert model.setData(
        model.index(0, 0), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole
    )
    doc_obj = opened.document.object(obj.obj_id)
    assert (doc_obj.name, doc_obj.category, doc_obj.visible) == ("dog", "animal", False)
    assert model.data(model.index(0, 1)) == "dog"
    assert opened.canvas_ctl._canvas._overlay_item.pixmap().isNull()  # hidden object
    opened.undo_stack.undo()
    assert opened.document.object(obj.obj_id).visible
    assert not model.setData(model.index(0, 1), "  ")  # empty names are refused
    # Selecting a row makes that object active.
    qtbot.keyClick(opened.canvas, Qt.Key.Key_N)
    assert opened.document.active_object != obj.obj_id
    opened.panel.view.selectRow(0)
    assert opened.document.active_object == obj.obj_id


def test_settings_remember_geometry_recent_and_opacity(qtbot, opened, settings, video_path):
    opened.set_opacity(0.8)
    assert settings.recent_files() == [str(video_path)]
    opened.resize(900, 640)
    opened.close()
    assert settings.opacity == pytest.approx(0.8)
    assert settings.window_geometry() is not None
    assert settings.store.fileName().endswith("settings.ini")


def test_drop_video_file_opens_it(qtbot, window, video_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video_path))])
    buttons, mods = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():
        # PySide6 flags the only QDragEnterEvent constructor Qt 6 has as deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, buttons, mods)
    # Qt delivers a drop only to the widget that accepted the drag's enter event.
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, buttons, mods)
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        QApplication.sendEvent(window, drop)
    assert window.document.num_frames == 20


def test_help_lists_every_shortcut(qtbot):
    dialog = HelpDialog()
    qtbot.addWidget(dialog)
    keys = [dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())]
    assert len(keys) == len(shortcut_table())
    extra = 6 + len(BRUSH_ROWS) + len(LABEL_ROWS) + len(FIND_ROWS)
    assert sum(bool(s.shortcuts) for s in SPECS) + extra == len(keys)
    assert "Left click" in keys


def test_busy_indicator_on_unencoded_frame(qtbot, opened):
    opened.document.set_current_frame(17)
    click_frame(opened, 40, 50)
    assert opened.canvas.is_busy()
    qtbot.waitUntil(lambda: not opened.canvas.is_busy(), timeout=5000)
    assert opened.document.mask(17, opened.document.objects()[0].obj_id) is not None


def test_first_run_asks_for_model(qtbot, window, monkeypatch, video_path):
    from app.gui.files import file_menu
    from app.gui.main import start

    window.settings.checkpoint = ""
    asked = []
    monkeypatch.setattr(
        file_menu, "_run_model_dialog", lambda *_: asked.append(1) or ("other.pt", "cpu")
    )
    with qtbot.waitSignal(window.client.model_loaded, timeout=5000):
        start(window, str(video_path))
    assert asked and window.settings.checkpoint == "other.pt"
    assert window.document.num_frames == 20


def test_canvas_wheel_zoom_and_middle_pan(qtbot, opened):
    from PySide6.QtTest import QTest

    canvas = opened.canvas
    before = canvas.zoom
    canvas.zoom_by(3)
    assert canvas.zoom == pytest.approx(before * 3)
    h = canvas.horizontalScrollBar().value()
    viewport = canvas.viewport()
    QTest.mousePress(
        viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 200)
    )
    QTest.mouseMove(viewport, QPoint(150, 200))
    QTest.mouseRelease(
        viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 200)
    )
    assert canvas.horizontalScrollBar().value() != h
    assert opened.document.objects() == []  # panning adds no prompt


def test_colour_edit_is_undoable_and_recolours_overlay(qtbot, opened):
    from app.gui.document.commands import EditObjectCommand

    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    obj = opened.document.objects()[0]
    canvas = opened.canvas
    opened.undo_stack.push(EditObjectCommand(opened.document, obj.obj_id, "c", color=(0, 255, 0)))
    overlay = canvas._overlay_item.pixmap().toImage()
    assert overlay.pixelColor(40, 50).green() == 255 and overlay.pixelColor(40, 50).red() == 0
    opened.undo_stack.undo()
    assert opened.document.object(obj.obj_id).color == obj.color


def test_device_menu_switches_and_remembers(qtbot, all_devices, opened, settings):
    cuda = next(a for a in opened.device_menu.actions() if a.text() == "cuda")
    with qtbot.waitSignal(opened.client.model_loaded, timeout=5000) as blocker:
        cuda.trigger()
    assert blocker.args[0].device == "cuda"
    assert settings.device == "cuda" and cuda.isChecked()
    assert opened.engine_status.device[1].text() == "cuda"
    assert not next(a for a in opened.device_menu.actions() if a.text() == "cpu").isChecked()


def test_recent_files_menu_reopens(qtbot, opened, video_path):
    opened.recent_menu.aboutToShow.emit()
    entries = [a for a in opened.recent_menu.actions() if a.text() == str(video_path)]
    assert len(entries) == 1
    opened.document.set_current_frame(7)
    with qtbot.waitSignal(opened.session.session_ready, timeout=10000):
        entries[0].trigger()
    assert opened.document.current_frame == 0
