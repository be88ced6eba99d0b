"""File > Import Annotations: DAVIS PNG folders, COCO and YouTube-VIS JSON into the document.

Every imported object becomes a new document object (a fresh id; its name and category
kept) with a mask prompt, and that mask, on each frame the file covers, so those frames are
keyframes the tracker can continue from. The whole import is one undo step. Masks are
decoded one frame at a time and kept only as `encode_rle` bytes.

The window hands these functions itself as an `ImportHost`: the few parts an import reads
and drives, so this module never imports the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtGui import QUndoCommand, QUndoStack
from PySide6.QtWidgets import QFileDialog, QMessageBox, QStatusBar, QWidget

from app.gui.document.annotations import AnnotationDocument, MaskletObject
from app.gui.document.commands import ImportObjectsCommand
from app.gui.document.label_commands import AddLabelsCommand
from app.imports import AnnotationImportError, ImportedAnnotations, import_annotations
from app.project.mask_codec import encode_rle

ERROR_TITLE = "Cannot import annotations"

_log = logging.getLogger(__name__)
JSON_FILTER = "COCO or YouTube-VIS annotations (*.json);;All files (*)"


class _Muting(Protocol):
    def set_muted(self, muted: bool) -> None: ...


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class ImportHost(Protocol):
    """What an import reads and drives of the window (`MainWindow` satisfies it)."""

    @property
    def document(self) -> AnnotationDocument: ...

    @property
    def undo_stack(self) -> QUndoStack: ...

    @property
    def session(self) -> _Muting: ...

    @property
    def playback(self) -> _Stoppable: ...

    def report_error(self, title: str, message: str) -> None: ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name


def ask_import_path(parent: QWidget) -> str | None:
    """Ask for a JSON file or a DAVIS folder of palette PNGs; None when cancelled."""
    box = QMessageBox(parent)
    box.setWindowTitle("Import annotations")
    box.setText("Import a COCO or YouTube-VIS JSON file, or a DAVIS folder of palette PNGs?")
    json_button = box.addButton("JSON File…", QMessageBox.ButtonRole.AcceptRole)
    folder_button = box.addButton("PNG Folder…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is json_button:
        path, _ = QFileDialog.getOpenFileName(parent, "Import annotations", "", JSON_FILTER)
    elif clicked is folder_button:
        path = QFileDialog.getExistingDirectory(parent, "Import DAVIS PNG folder")
    else:
        path = ""
    return path or None


def read_annotations(path: str, doc: AnnotationDocument) -> ImportedAnnotations:
    """Import `path` checked against the open video; AnnotationImportError on any problem.

    A file holding several videos is tried again with the open video's name, the match a
    user would pick; if that fails too, the first message (which lists them) is kept.
    """
    kwargs = {"video_size": doc.video_size, "num_frames": doc.num_frames}
    try:
        return import_annotations(path, **kwargs)
    except AnnotationImportError as exc:
        if not str(exc).endswith("choose one") or not doc.video_path:
            raise
        try:
            return import_annotations(path, video=Path(doc.video_path).stem, **kwargs)
        except AnnotationImportError:
            raise exc from None


def read_keyframes(annotations: ImportedAnnotations) -> dict[int, dict[int, bytes]]:
    """{imported obj_id: {frame: encode_rle bytes}} of the non-empty masks.

    One object on one frame is decoded at a time, so a long video with many objects
    never holds its masks as arrays.
    """
    keyframes: dict[int, dict[int, bytes]] = {o.obj_id: {} for o in annotations.objects}
    for frame in annotations.frames:
        for obj_id, mask in annotations.iter_masks(frame):
            if obj_id in keyframes and mask.any():
                keyframes[obj_id][frame] = encode_rle(mask)
    return keyframes


def build_import_command(
    doc: AnnotationDocument,
    annotations: ImportedAnnotations,
    mute: Callable[[bool], None] | None = None,
) -> QUndoCommand:
    """The undo step adding `annotations` as new objects with ids that clash with none, and
    the file's categories to the label list (in the file's order, unused ones too)."""
    imported = read_keyframes(annotations)
    objects: list[MaskletObject] = []
    keyframes: dict[int, dict[int, bytes]] = {}
    for item in annotations.objects:
        obj_id = doc.next_object_id()
        default = doc.default_object(obj_id)
        name = item.name.strip() or default.name
        objects.append(MaskletObject(obj_id, name, item.category, default.color, True))
        keyframes[obj_id] = imported[item.obj_id]
    frames = len({f for per_object in keyframes.values() for f in per_object})
    text = f"Import {len(objects)} objects on {frames} frames"
    command = ImportObjectsCommand(doc, objects, keyframes, text=text, mute=mute)
    return AddLabelsCommand(doc, command, annotations.categories)


def require_video(window: ImportHost) -> bool:
    """True when a video is open; otherwise the error is reported."""
    if window.document.num_frames == 0:
        window.report_error(ERROR_TITLE, "Open a video before importing annotations.")
        return False
    return True


def describe_failure(path: str, exc: Exception) -> str:
    """The one line the user sees for a failed import.

    The importers' own errors and OS errors are the file's fault and read as they are.
    Anything else is a bug of ours met on this file: the user still gets one line and a
    working app, and the traceback goes to the log so the bug is not hidden."""
    if isinstance(exc, (AnnotationImportError, OSError)):
        text = str(exc).strip()
    else:
        _log.error("importing %s failed unexpectedly", path, exc_info=exc)
        text = f"internal error ({type(exc).__name__}) reading {Path(path).name}: {exc}"
    lines = text.splitlines()
    return lines[0] if lines else type(exc).__name__


def import_into_window(window: ImportHost, path: str) -> bool:
    """Import `path` into the open video as one undo step; errors go to `report_error`."""
    doc = window.document
    if not require_video(window):
        return False
    try:
        annotations = read_annotations(path, doc)
        if not annotations.objects:
            raise AnnotationImportError(f"{Path(path).name} holds no objects")
        command = build_import_command(doc, annotations, window.session.set_muted)
    except Exception as exc:  # noqa: BLE001 - a hostile file must never take the app down
        window.report_error(ERROR_TITLE, describe_failure(path, exc))
        return False
    window.playback.stop()
    window.undo_stack.push(command)
    window.statusBar().showMessage(f"{command.text()} from {Path(path).name}", 5000)
    return True
