"""File > Export…: format, output, frame range and step, objects; runs off the GUI thread.

The export reads a snapshot of the mask store and its own video reader on a worker
thread (moveToThread, like inference), reports progress per frame and stops within a
frame when cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.export import ExportOptions, ObjectMeta, StoreSource, export
from app.export.output_guard import check_outputs, export_outputs
from app.gui.document.annotations import AnnotationDocument
from app.project.mask_store import MaskStore

FORMAT_LABELS = {
    "png": "DAVIS palette PNGs (folder)",
    "coco": "COCO instance JSON",
    "ytvis": "YouTube-VIS JSON",
    "mp4": "Overlay video (MP4)",
}
_SUFFIX = {"png": "", "coco": ".json", "ytvis": ".json", "mp4": ".mp4"}


class ExportJob(QObject):
    """Runs one export on its own thread; emits progress, then finished or failed."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self, *, open_reader: Callable[[], Any], store: MaskStore, objects: list[ObjectMeta],
        name: str, fmt: str, out: str, options: ExportOptions, labels: Sequence[str] = (),
    ) -> None:  # fmt: skip
        super().__init__()
        self._open_reader, self._store, self._objects = open_reader, store, objects
        self._labels = list(labels)
        self._name, self._fmt, self._out, self._options = name, fmt, out, options
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    @Slot()
    def run(self) -> None:
        try:
            reader = self._open_reader()
            source = StoreSource(
                name=self._name, reader=reader, store=self._store, objects=self._objects,
                labels=self._labels,
            )  # fmt: skip
            result = export(
                source, self._fmt, self._out, self._options,
                progress=self.progress.emit, should_stop=self._stop.is_set,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the dialog shows any failure
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(result)


class ExportDialog(QDialog):
    export_finished = Signal(object)
    export_failed = Signal(str)

    def __init__(
        self,
        document: AnnotationDocument,
        open_reader: Callable[[], Any],
        parent: QWidget | None = None,
        *,
        inputs: Sequence[str] = (),
    ) -> None:
        """`inputs`: the user's files besides the video (project file, mask folder) that
        no output may replace."""
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._doc = document
        self._open_reader = open_reader
        self._inputs = list(inputs)
        self._thread: QThread | None = None
        self._job: ExportJob | None = None
        self._build()
        self._on_format_changed()

    def _build(self) -> None:
        n = self._doc.num_frames
        self.format = QComboBox()
        for key, label in FORMAT_LABELS.items():
            self.format.addItem(label, key)
        self.output = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        self.start = _spin(0, n - 1, 0)
        self.stop = _spin(1, n, n)
        self.step = _spin(1, max(n, 1), 1)
        self.objects = QListWidget()
        for obj in self._doc.objects():
            item = QListWidgetItem(obj.name)
            item.setData(Qt.ItemDataRole.UserRole, obj.obj_id)
            item.setCheckState(Qt.CheckState.Checked)
            self.objects.addItem(item)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Output", out_row)
        form.addRow("First frame", self.start)
        form.addRow("End frame (exclusive)", self.stop)
        form.addRow("Every Nth frame", self.step)
        form.addRow("Objects", self.objects)
        self._build_extras(form)
        self.bar = QProgressBar()
        self.status = QLabel()
        self.run_button = QPushButton("Export")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.run_button, self.cancel_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addLayout(buttons)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        for edited in (
            self.format.currentIndexChanged, self.output.textChanged, self.start.valueChanged,
            self.stop.valueChanged, self.step.valueChanged, self.objects.itemChanged,
            self.images.currentIndexChanged, self.polygons.toggled, self.binary_masks.toggled,
        ):  # fmt: skip
            edited.connect(self._clear_status)
        self.run_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        close.clicked.connect(self.reject)

    def _build_extras(self, form: QFormLayout) -> None:
        """The command line's extras: source images, COCO polygons, per-object PNGs."""
        self.images = QComboBox()
        for label, value in (("None", None), ("JPEG", "jpg"), ("PNG", "png")):
            self.images.addItem(label, value)
        self.images.setToolTip("Also write the video's frames next to the masks")
        self.polygons = QCheckBox("Polygons instead of RLE (lossy; COCO only)")
        self.binary_masks = QCheckBox("Also one black/white PNG per object (PNG only)")
        form.addRow("Source images", self.images)
        form.addRow("", self.polygons)
        form.addRow("", self.binary_masks)

    def _clear_status(self) -> None:
        """A finished or failed export's status describes other settings once they change."""
        if self._thread is None:
            self.status.clear()
            self.bar.reset()

    def _on_format_changed(self) -> None:
        fmt = self.format.currentData()
        stem = Path(self._doc.video_path or "export").with_suffix("")
        self.output.setText(f"{stem}-{fmt}{_SUFFIX[fmt]}")
        self.polygons.setEnabled(fmt == "coco")
        self.binary_masks.setEnabled(fmt == "png")

    def _on_browse(self) -> None:
        if self.format.currentData() == "png":
            path = QFileDialog.getExistingDirectory(self, "Export to folder")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to file", self.output.text())
        if path:
            self.output.setText(path)

    def options(self) -> ExportOptions:
        """The chosen range, step and objects; raises ValueError when they make no sense."""
        ids = tuple(
            self.objects.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.objects.count())
            if self.objects.item(i).checkState() == Qt.CheckState.Checked
        )
        fmt = self.format.currentData()
        return ExportOptions(
            start=self.start.value(),
            stop=self.stop.value(),
            step=self.step.value(),
            object_ids=ids,
            images=self.images.currentData(),
            polygons=fmt == "coco" and self.polygons.isChecked(),
            binary_masks=fmt == "png" and self.binary_masks.isChecked(),
        )

    def start_export(self) -> None:
        fmt, out = self.format.currentData(), self.output.text()
        inputs = [p for p in (self._doc.video_path, *self._inputs) if p]
        try:
            options = self.options()
            check_outputs(export_outputs(fmt, Path(out), images=bool(options.images)), inputs)
        except ValueError as exc:
            self._on_failed(str(exc))
            return
        objects = [
            ObjectMeta(o.obj_id, o.name, o.category, tuple(o.color)) for o in self._doc.objects()
        ]
        self._job = ExportJob(
            open_reader=self._open_reader, store=self._doc.store.copy(),
            objects=objects, name=Path(self._doc.video_path or "video").stem,
            fmt=fmt, out=out, options=options,
            labels=[label.name for label in self._doc.labels()],
        )  # fmt: skip
        self._thread = QThread(self)
        self._job.moveToThread(self._thread)
        self._thread.started.connect(self._job.run)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.bar.reset()
        self.status.setText("Exporting…")
        self._thread.start()

    def cancel_export(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)

    def _on_finished(self, result: Any) -> None:
        self._stop_thread()
        verb = "Cancelled after" if result.cancelled else "Exported"
        self.status.setText(f"{verb} {result.frames_done} of {result.frames_total} frames")
        self.export_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._stop_thread()
        self.status.setText(f"Export failed: {message}")
        self.export_failed.emit(message)

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread = None
            self._job = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def done(self, result: int) -> None:
        self.cancel_export()
        self._stop_thread()
        super().done(result)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, max(high, low))
    spin.setValue(value)
    return spin
