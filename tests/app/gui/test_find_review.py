"""Reviewing proposals: accept all (Enter), accept or reject one (canvas click or row), reject
all (Esc), one Ctrl+Z for an acceptance, overlap marking, rejections not proposed again."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import click_frame
from find_helpers import RECTS, centre, find_phrase, finding_window, names, np_rect_mask, rows
from PySide6.QtCore import Qt

from app.gui.document.annotations import MaskState
from app.project.mask_codec import decode_rle


@pytest.fixture
def finding(qtbot, settings, recovery_root, video_path):
    yield from finding_window(qtbot, settings, recovery_root, video_path)


def test_enter_accepts_all_as_numbered_objects_and_one_ctrl_z_undoes_it(qtbot, finding):
    doc = finding.document
    accepted: list = []
    finding.find_controller.phrases_accepted.connect(accepted.append)
    find_phrase(qtbot, finding, "bicycle")
    rows_widget = finding.find_controller.list.rows
    assert rows_widget.hasFocus()  # the proposals took the focus from the phrase
    qtbot.keyClick(rows_widget, Qt.Key.Key_Return)  # Accept all
    assert names(finding) == ["bicycle 1", "bicycle 2", "bicycle 3"]
    assert all(o.category == "bicycle" for o in doc.objects())
    assert [o.finder_score for o in doc.objects()] == pytest.approx([0.9, 0.8, 0.7])
    assert [label.name for label in doc.labels()] == ["bicycle"]
    for obj, rect in zip(doc.objects(), RECTS, strict=False):
        prompt = doc.prompts(0, obj.obj_id)
        assert prompt.mask is not None and not prompt.points
        assert np.array_equal(decode_rle(prompt.mask, (120, 160)), np_rect_mask(rect))
        assert doc.mask_state(0, obj.obj_id) == MaskState.MASK
    saved = finding.project.to_project().objects  # what a save writes
    assert [o.finder_score for o in saved] == pytest.approx([0.9, 0.8, 0.7])
    assert accepted == [["bicycle"]] and finding.find_controller.accepted_phrases() == ["bicycle"]
    assert rows(finding) == [] and finding.find_controller.review is None

    assert finding.undo_stack.count() == 1
    qtbot.keyClick(finding.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert names(finding) == [] and doc.labels() == () and doc.all_prompts() == {}
    qtbot.keyClick(
        finding.canvas,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert names(finding) == ["bicycle 1", "bicycle 2", "bicycle 3"]


def test_a_click_accepts_one_a_right_click_rejects_one(qtbot, finding):
    find_phrase(qtbot, finding, "car")
    finding.canvas.setFocus()
    click_frame(finding, *centre(RECTS[1]))
    assert names(finding) == ["car 1"]
    assert finding.document.object(
        finding.document.objects()[0].obj_id
    ).finder_score == pytest.approx(0.8)
    click_frame(finding, *centre(RECTS[0]), button=Qt.MouseButton.RightButton)
    assert [r.split(" · ")[1] for r in rows(finding)] == ["0.70"]
    assert names(finding) == ["car 1"] and not finding.document.all_prompts().get((0, 99))
    # A click beside every proposal is a point prompt as ever.
    click_frame(finding, 150, 5)
    (car,) = finding.document.objects()  # the accepted object is the active one
    ((x, y, label),) = finding.document.prompts(0, car.obj_id).points
    assert (x, y, label) == (pytest.approx(150, abs=0.5), pytest.approx(5, abs=0.5), 1)


def test_rows_accept_and_reject_one_and_a_rejection_is_not_proposed_again(qtbot, finding):
    find_phrase(qtbot, finding, "dog")
    lst = finding.find_controller.list
    qtbot.mouseClick(lst.row_widget(1).reject, Qt.MouseButton.LeftButton)
    assert [r.split(" · ")[1] for r in rows(finding)] == ["0.90", "0.70"]
    qtbot.mouseClick(lst.row_widget(0).accept, Qt.MouseButton.LeftButton)
    assert names(finding) == ["dog 1"] and rows(finding) == ["dog · 0.70"]

    find_phrase(qtbot, finding, "dog")  # the same frame and phrase: 0.80 stays rejected
    assert rows(finding) == ["dog · 0.90 · overlaps dog 1", "dog · 0.70"]
    find_phrase(qtbot, finding, "Cat")  # another phrase: it may be proposed
    assert [r.split(" · ")[1] for r in rows(finding)] == ["0.90", "0.80", "0.70"]


def test_escape_rejects_all_shown(qtbot, finding):
    find_phrase(qtbot, finding, "tree")
    qtbot.keyClick(finding.canvas, Qt.Key.Key_Escape)
    assert rows(finding) == [] and finding.find_controller.layer.item_count == 0
    assert names(finding) == []
    find_phrase(qtbot, finding, "tree")
    assert rows(finding) == []  # all three were rejected; 0.30 is under the threshold
    assert finding.find_controller.review is not None
    assert len(finding.find_controller.review.pending) == 1


def test_a_proposal_overlapping_an_object_is_marked_and_left_by_accept_all(qtbot, finding):
    find_phrase(qtbot, finding, "sign")
    click_frame(finding, *centre(RECTS[0]))  # accept the best: "sign 1"
    find_phrase(qtbot, finding, "sign")
    assert rows(finding)[0] == "sign · 0.90 · overlaps sign 1"
    finding.canvas.setFocus()
    qtbot.keyClick(finding.canvas, Qt.Key.Key_Return)  # Accept all, from the canvas
    assert names(finding) == ["sign 1", "sign 2", "sign 3"]
    assert rows(finding) == ["sign · 0.90 · overlaps sign 1"]  # left for one-by-one review
    qtbot.mouseClick(finding.find_controller.list.row_widget(0).accept, Qt.MouseButton.LeftButton)
    assert names(finding) == ["sign 1", "sign 2", "sign 3", "sign 4"]
    assert rows(finding) == []


def test_changing_frame_drops_the_proposals(qtbot, finding):
    find_phrase(qtbot, finding, "bus")
    finding.canvas.setFocus()
    qtbot.keyClick(finding.canvas, Qt.Key.Key_Right)
    assert rows(finding) == [] and finding.find_controller.layer.item_count == 0
