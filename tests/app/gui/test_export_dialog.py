"""File > Export… runs the export off the GUI thread with progress and cancel."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from conftest import NUM_FRAMES, click_frame

from app.gui.dialogs.export_dialog import ExportDialog


def _with_masks(qtbot, opened):
    with qtbot.waitSignal(opened.client.mask_ready, timeout=5000):
        click_frame(opened, 40, 50)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        opened.propagate("forward")


def test_export_coco_with_range_and_step(qtbot, opened, tmp_path):
    _with_masks(qtbot, opened)
    opened.actions.export.trigger()
    dialog = opened.files.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("coco"))
    out = tmp_path / "out.json"
    dialog.output.setText(str(out))
    dialog.start.setValue(2)
    dialog.stop.setValue(12)
    dialog.step.setValue(5)
    with qtbot.waitSignal(dialog.export_finished, timeout=20000) as blocker:
        dialog.run_button.click()
    result = blocker.args[0]
    assert not result.cancelled and result.frames_done == 2
    data = json.loads(out.read_text())
    assert len(data["images"]) == 2
    assert len(data["annotations"]) == 2
    dialog.close()


def test_export_bad_range_reports_failure(qtbot, opened, tmp_path):
    _with_masks(qtbot, opened)
    opened.actions.export.trigger()
    dialog = opened.files.export_dialog
    dialog.start.setValue(NUM_FRAMES - 1)
    dialog.stop.setValue(5)
    with qtbot.waitSignal(dialog.export_failed, timeout=5000) as blocker:
        dialog.run_button.click()
    assert "empty" in blocker.args[0]
    dialog.close()


def test_export_cancel_keeps_gui_free_and_stops(qtbot, opened, tmp_path):
    _with_masks(qtbot, opened)
    gate = threading.Event()
    path = opened.document.video_path

    def slow_reader():
        gate.wait(10)
        return opened.video_opener(path)

    dialog = ExportDialog(opened.document, slow_reader, parent=opened)
    dialog.format.setCurrentIndex(dialog.format.findData("coco"))
    out = tmp_path / "cancelled.json"
    dialog.output.setText(str(out))
    dialog.start_export()
    # The export thread is blocked, yet the GUI thread runs on.
    assert dialog.cancel_button.isEnabled() and not dialog.run_button.isEnabled()
    dialog.cancel_export()
    gate.set()
    with qtbot.waitSignal(dialog.export_finished, timeout=20000) as blocker:
        pass
    result = blocker.args[0]
    assert result.cancelled and result.frames_done == 0
    assert not out.exists()
    dialog.close()


def test_export_refuses_to_replace_the_video_or_project(qtbot, opened, tmp_path):
    """The overlay MP4 over its own video, or COCO over the saved project, is refused
    before the export starts, and both files stay as they were."""
    video = opened.document.video_path
    project = tmp_path / "p.masklet"
    opened.project.save(str(project))
    before = {p: Path(p).read_bytes() for p in (video, project)}
    opened.actions.export.trigger()
    dialog = opened.files.export_dialog
    for fmt, out in [("mp4", video), ("coco", project)]:
        dialog.format.setCurrentIndex(dialog.format.findData(fmt))
        dialog.output.setText(str(out))
        with qtbot.waitSignal(dialog.export_failed, timeout=5000) as blocker:
            dialog.run_button.click()
        assert blocker.args[0].startswith(f"refusing to write {out}: it is the input")
    assert {p: Path(p).read_bytes() for p in before} == before
    dialog.close()
