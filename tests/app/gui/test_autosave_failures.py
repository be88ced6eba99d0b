"""Every autosave failure reaches the user: status bar always, one dialog per failure streak.

pytest-qt fails a test on any exception escaping a Qt slot, so these tests also prove that
no failure is left as a traceback on stderr.
"""

from __future__ import annotations

import shutil

from app.gui.document.annotations import FramePrompts


def _prompt(x: float) -> FramePrompts:
    return FramePrompts(((x, 5.0, 1),), None, None)


def test_refused_document_state_is_reported_once_until_it_recovers(qtbot, opened):
    doc, project = opened.document, opened.project
    obj = opened.new_object()
    failures: list[tuple[str, bool]] = []
    recovered: list[bool] = []
    project.autosave_failed.connect(lambda message, first: failures.append((message, first)))
    project.autosave_recovered.connect(lambda: recovered.append(True))
    opened.session.set_muted(True)  # the fake engine is not what is under test here

    # A state the project format refuses, as a faulty import could leave behind.
    doc.set_prompts(-1, obj, _prompt(5.0))
    assert failures == [("autosave failed: prompt frame -1 is outside the video", True)]
    box = opened.error_box
    assert box is not None and box.isVisible() and box.windowTitle() == "Autosave failed"
    assert "prompt frame -1 is outside the video" in box.text()
    assert "outside the video" in opened.statusBar().currentMessage()

    doc.set_prompts(-1, obj, _prompt(6.0))  # still failing: status bar, no second dialog
    assert failures[-1] == ("autosave failed: prompt frame -1 is outside the video", False)
    assert opened.error_box is box and project.autosave_failing

    doc.set_prompts(-1, obj, FramePrompts())  # the bad prompt is gone: saves work again
    assert recovered == [True] and not project.autosave_failing
    assert opened.statusBar().currentMessage() == "Autosave works again"
    box.close()

    doc.set_prompts(-2, obj, _prompt(7.0))  # a new streak gets a new dialog
    assert failures[-1][1] is True and opened.error_box is not box
    assert opened.error_box.isVisible()


def test_disk_failure_of_a_timed_mask_save_is_reported(qtbot, opened):
    project = opened.project
    obj = opened.new_object()
    session = project.autosaver.session_dir
    assert session is not None and project.autosaver.last_error is None
    shutil.rmtree(session)
    session.write_text("a file where the recovery folder was")  # every save now fails
    mask = opened.document.mask(0, obj)
    with qtbot.waitSignal(project.autosave_failed, timeout=5000) as blocker:
        opened.document.set_mask(3, obj, mask)  # mask-only: saved by the timer
    message, first = blocker.args
    assert first and message.startswith("autosave failed: ") and str(session) in message
    assert opened.error_box is not None and opened.error_box.isVisible()

    session.unlink()
    session.mkdir()
    with qtbot.waitSignal(project.autosave_recovered, timeout=5000):
        opened.document.set_mask(4, obj, mask)
    assert not project.autosave_failing
