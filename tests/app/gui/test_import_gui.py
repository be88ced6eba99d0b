"""File > Import Annotations: COCO and DAVIS labels become objects with mask keyframes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import HEIGHT, NUM_FRAMES, WIDTH
from fake_engine import MaskPrompt, MaskSession, fake_engine
from PIL import Image
from pycocotools import mask as mask_utils

from app.gui.document.annotations import MaskState
from app.gui.window.main_window import MainWindow
from app.project.autosave import Autosaver
from app.project.mask_codec import decode_rle
from app.video import open_video


def rect(x0: int, y0: int, w: int, h: int, size=(HEIGHT, WIDTH)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[y0 : y0 + h, x0 : x0 + w] = True
    return mask


def square(frame: int) -> np.ndarray:
    """The fixture video's red square on `frame`."""
    return rect(20 + 3 * frame, 40, 24, 24)


def write_coco(path: Path, size=(HEIGHT, WIDTH)) -> Path:
    """Track 7 "car" on frames 2 and 5 (RLE), track 9 "person" on frame 5 (polygon)."""
    images = [
        {"id": 10 + f, "file_name": f"square/{f:05d}.jpg", "height": size[0], "width": size[1]}
        for f in (2, 5)
    ]
    annotations = []
    for f in (2, 5):
        rle = mask_utils.encode(np.asfortranarray(square(f)[: size[0], : size[1]], np.uint8))
        rle["counts"] = rle["counts"].decode("ascii")
        entry = {"id": 100 + f, "image_id": 10 + f, "category_id": 1, "track_id": 7}
        annotations.append({**entry, "segmentation": rle})
    polygon = [[100, 10, 130, 10, 130, 30, 100, 30]]
    annotations.append(
        {"id": 200, "image_id": 15, "category_id": 2, "track_id": 9, "segmentation": polygon}
    )
    categories = [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def write_davis(folder: Path, frames: dict[int, dict[int, np.ndarray]]) -> Path:
    folder.mkdir()
    for frame, masks in frames.items():
        labels = np.zeros((HEIGHT, WIDTH), np.uint8)
        for index, mask in masks.items():
            labels[mask] = index
        image = Image.fromarray(labels, mode="P")
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))
        image.save(folder / f"{frame:05d}.png")
    return folder


@pytest.fixture
def sessions() -> list[MaskSession]:
    return []


@pytest.fixture
def window(qtbot, settings, recovery_root, sessions):
    engine = fake_engine()

    def open_session(_model, source, device):
        session = MaskSession(source, device)
        sessions.append(session)
        return session

    w = MainWindow(
        engine=replace(engine, open_session=open_session, make_prompt=MaskPrompt),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    w.confirm_discard = lambda: True
    w.ask_recovery = lambda info: "later"
    qtbot.addWidget(w)
    w.show()
    w.load_model(settings.checkpoint, "cpu")
    yield w
    w.close()


@pytest.fixture
def opened(qtbot, window, video_path):
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        assert window.open_video(str(video_path))
    return window


def import_via_action(window: MainWindow, path: Path) -> None:
    window.ask_import_path = lambda: str(path)
    window.actions.import_annotations.trigger()


def imported_ids(window: MainWindow, existing: set[int]) -> dict[str, int]:
    return {o.name: o.obj_id for o in window.document.objects() if o.obj_id not in existing}


def test_coco_import_adds_objects_keyframes_masks_and_undo_redo(qtbot, opened, tmp_path, sessions):
    doc = opened.document
    first = opened.new_object()
    steps = opened.undo_stack.count()
    import_via_action(opened, write_coco(tmp_path / "labels.json"))

    assert opened.last_error is None
    ids = imported_ids(opened, {first})
    assert set(ids) == {"car 7", "person 9"} and first not in ids.values()
    car, person = ids["car 7"], ids["person 9"]
    assert doc.object(car).category == "car" and doc.object(person).category == "person"
    assert doc.keyframes(car) == [2, 5] and doc.keyframes(person) == [5]
    assert np.array_equal(decode_rle(doc.prompts(2, car).mask, doc.video_size), square(2))
    assert doc.prompts(2, car).points == () and doc.prompts(2, car).box is None
    assert np.array_equal(doc.mask(5, car), square(5))
    assert doc.mask(5, person)[20, 115] and not doc.mask(5, person)[50, 50]
    assert doc.mask_state(2, car) == MaskState.MASK and doc.mask_state(3, car) == MaskState.NONE
    assert doc.state_track(person)[5] == MaskState.MASK
    assert opened.undo_stack.count() == steps + 1
    assert {(2, car), (5, car), (5, person)} <= opened.session.unsynced

    # The engine gets the mask prompts through the session controller before propagating.
    doc.set_current_frame(0)
    with qtbot.waitSignal(opened.client.propagation_finished, timeout=10000):
        opened.propagate("forward")
    sent = {(c[1], c[2]): c[3] for c in sessions[-1].calls if c[0] == "add_mask"}
    assert set(sent) == {(2, car), (5, car), (5, person)}
    assert np.array_equal(sent[(5, car)], square(5))
    assert doc.mask_state(10, car) == MaskState.MASK

    opened.undo_stack.undo()
    assert [o.obj_id for o in doc.objects()] == [first]
    assert doc.all_prompts() == {} and doc.store.object_ids() == []
    qtbot.waitUntil(lambda: car not in sessions[-1].object_ids, timeout=5000)

    opened.undo_stack.redo()
    assert imported_ids(opened, {first}) == ids
    assert doc.keyframes(car) == [2, 5] and np.array_equal(doc.mask(2, car), square(2))
    assert doc.mask_state(10, car) == MaskState.NONE


def test_davis_folder_import_and_project_round_trip(qtbot, opened, tmp_path):
    doc = opened.document
    folder = write_davis(
        tmp_path / "davis", {3: {1: square(3), 2: rect(120, 80, 20, 20)}, 7: {1: square(7)}}
    )
    import_via_action(opened, folder)

    assert opened.last_error is None
    ids = imported_ids(opened, set())
    assert set(ids) == {"object 1", "object 2"}
    one, two = ids["object 1"], ids["object 2"]
    assert doc.keyframes(one) == [3, 7] and doc.keyframes(two) == [3]
    assert np.array_equal(doc.mask(7, one), square(7))
    assert np.array_equal(doc.mask(3, two), rect(120, 80, 20, 20))

    project = tmp_path / "work.masklet"
    assert opened.save_project(str(project))
    with qtbot.waitSignal(opened.session.session_ready, timeout=10000):
        assert opened.open_project(str(project))
    assert doc.keyframes(one) == [3, 7]
    assert np.array_equal(decode_rle(doc.prompts(7, one).mask, doc.video_size), square(7))


def test_mismatched_files_report_one_line_and_change_nothing(qtbot, opened, tmp_path):
    doc = opened.document
    steps = opened.undo_stack.count()
    import_via_action(opened, write_coco(tmp_path / "small.json", size=(60, 80)))
    assert opened.last_error is not None and "\n" not in opened.last_error
    assert opened.last_error.startswith("Cannot import annotations")
    assert "80x60" in opened.last_error and f"{WIDTH}x{HEIGHT}" in opened.last_error
    assert doc.objects() == [] and doc.all_prompts() == {}
    assert opened.undo_stack.count() == steps

    long = write_davis(tmp_path / "long", {NUM_FRAMES + 5: {1: square(0)}})
    import_via_action(opened, long)
    assert f"{NUM_FRAMES} frames" in opened.last_error
    assert doc.objects() == [] and opened.undo_stack.count() == steps

    # The window stays usable: a valid import still works afterwards.
    import_via_action(opened, write_coco(tmp_path / "ok.json"))
    assert len(doc.objects()) == 2


def test_import_without_video_reports_error_without_asking(window):
    asked = []
    window.ask_import_path = lambda: asked.append(True)
    window.actions.import_annotations.trigger()
    assert asked == []
    assert window.last_error == (
        "Cannot import annotations: Open a video before importing annotations."
    )
    assert window.import_annotations("anything.json") is False


def test_import_action_is_in_file_menu_with_shortcut(window):
    action = window.actions.import_annotations
    assert action.shortcut().toString() == "Ctrl+I"
    assert not action.icon().isNull()
    file_menu = window.menuBar().actions()[0].menu()
    assert action in file_menu.actions()


def assert_one_line_error(window: MainWindow, starts: str) -> None:
    assert window.last_error is not None and "\n" not in window.last_error
    assert window.last_error.startswith(f"Cannot import annotations: {starts}")
    assert window.error_box is not None and window.error_box.isVisible()
    assert window.error_box.text() == window.last_error.split(": ", 1)[1]


def test_hostile_file_reports_one_line_and_the_app_keeps_working(qtbot, opened, tmp_path):
    doc = opened.document
    steps = opened.undo_stack.count()
    data = json.loads(write_coco(tmp_path / "labels.json").read_text())
    data["annotations"][0]["track_id"] = "abc"
    (tmp_path / "track.json").write_text(json.dumps(data))
    import_via_action(opened, tmp_path / "track.json")
    assert_one_line_error(opened, "track.json: annotations[0].track_id must be")
    for image, frame in zip(data["images"], (-3, 5), strict=True):
        image["frame_index"] = frame
    (tmp_path / "frames.json").write_text(json.dumps(data))
    import_via_action(opened, tmp_path / "frames.json")
    assert_one_line_error(opened, "frames.json: images[0].frame_index must be a frame number")
    assert doc.objects() == [] and opened.undo_stack.count() == steps

    import_via_action(opened, write_coco(tmp_path / "ok.json"))
    assert len(doc.objects()) == 2 and opened.undo_stack.count() == steps + 1


@pytest.mark.parametrize("stage", ["reading", "decoding"])
def test_importer_bug_is_one_line_logged_and_the_app_keeps_working(
    qtbot, opened, tmp_path, monkeypatch, caplog, stage
):
    """The last line of defence: an exception no importer should raise still ends in the
    one-line dialog, with its traceback in the log, and the window stays usable."""
    import app.gui.files.import_io as import_io

    def broken(*_args, **_kwargs):
        raise TypeError("unhashable type: 'list'")

    if stage == "reading":
        monkeypatch.setattr(import_io, "import_annotations", broken)
    else:
        monkeypatch.setattr(import_io.ImportedAnnotations, "iter_masks", broken)
    import_via_action(opened, write_coco(tmp_path / "labels.json"))
    assert_one_line_error(opened, "internal error (TypeError) reading labels.json")
    assert opened.document.objects() == []
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records)

    monkeypatch.undo()
    import_via_action(opened, write_coco(tmp_path / "ok.json"))
    assert len(opened.document.objects()) == 2
