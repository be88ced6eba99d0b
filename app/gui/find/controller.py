"""The Find controller: from a phrase or exemplar boxes to proposals to new objects.

Enter in the Find bar (or a box drawn with the find-similar tool, S) sends a `Find` for the
current frame to the worker; the answer is a `Review` of proposals, drawn on the canvas
and listed. The threshold shows more or fewer without running the model again. Accept all
(Enter) takes the shown proposals that overlap no object; one is accepted by a left click
on it or its row's Accept, rejected by a right click or Reject; Esc cancels a running find,
else rejects all shown. A rejection is remembered (`RejectedProposals`). Accepting is one
undo step (app/gui/find/acceptance.py).

`phrases_accepted` and `accepted_phrases()` give the phrases objects were found for, for
finding new instances while propagating.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QUndoStack
from PySide6.QtWidgets import QDockWidget, QMainWindow, QStatusBar

from app.gui.actions import AppActions
from app.gui.canvas.brush import Tool
from app.gui.canvas.frame_canvas import FrameCanvas, ToolActions
from app.gui.document.annotations import AnnotationDocument
from app.gui.find.acceptance import accept_command, accepted_phrases, overlapped_object
from app.gui.find.find_bar import FindBar
from app.gui.find.proposal_layer import ProposalLayer, ShownProposal
from app.gui.find.proposal_list import ProposalList
from app.gui.find.review import Proposal, RejectedProposals, Review
from app.gui.worker.client import WorkerClient
from app.gui.worker.finding import NO_FINDER
from app.gui.worker.jobs import Activity, FindResult, JobError
from app.project.found import clean_phrase, cleaning_note

Exemplar = tuple[tuple[float, float, float, float], bool]


class FindController(QObject):
    """Runs the Find bar, the proposals' review and the find-similar tool."""

    phrases_accepted = Signal(list)
    status_message = Signal(str)

    def __init__(
        self,
        document: AnnotationDocument,
        undo: QUndoStack,
        client: WorkerClient,
        canvas: FrameCanvas,
        actions: AppActions,
        *,
        mute: Callable[[bool], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc, self._undo, self._client, self._canvas = document, undo, client, canvas
        self._mute = mute
        self.bar = FindBar()
        self.bar.hide()
        self.list = ProposalList()
        self.dock = QDockWidget("Proposals")
        self.dock.setObjectName("proposalsDock")
        self.dock.setWidget(self.list)
        self.dock.hide()
        self.layer = ProposalLayer(canvas.scene())
        self.rejected = RejectedProposals()
        self.review: Review | None = None
        self.exemplars: list[Exemplar] = []
        self._exemplar_frame = -1
        self._request_id: int | None = None
        self._sent_text = ""
        self._finder_ready = False
        self._overlaps: dict[int, str] = {}
        self._phrases = accepted_phrases(document)
        self.tool_actions: ToolActions | None = None
        self._connect(actions)

    def _connect(self, actions: AppActions) -> None:
        actions.find_objects.triggered.connect(self.open_bar)
        actions.cancel.triggered.connect(self.escape)
        self.bar.entered.connect(self.find)
        self.bar.accept_all_requested.connect(self.accept_all)
        self.bar.reject_all_requested.connect(self.reject_all)
        self.bar.threshold_changed.connect(lambda _t: self._show())
        self.list.accept_requested.connect(lambda rank: self._accept_ranks([rank]))
        self.list.reject_requested.connect(lambda rank: self._reject_ranks([rank]))
        self.list.accept_all_requested.connect(self.accept_all)
        self.list.selection_changed.connect(lambda _rank: self._show_on_canvas())
        # Enter on the canvas accepts all; a filter, not a shortcut, so that it never takes
        # an Enter meant for a dialog.
        self._canvas.installEventFilter(self)
        self._canvas.click_filter = self._on_canvas_click
        self._canvas.exemplar_drawn.connect(self._on_exemplar_drawn)
        self._client.find_ready.connect(self._on_find_ready)
        self._client.job_failed.connect(self._on_job_failed)
        self._client.finder_loaded.connect(self._on_finder_loaded)
        self._client.activity_changed.connect(self._on_activity)
        doc = self._doc
        doc.current_frame_changed.connect(lambda _f: self.end_review(cancel=True))
        doc.video_changed.connect(self._on_video_changed)
        doc.masks_changed.connect(self._on_masks_changed)
        doc.objects_changed.connect(self._on_objects_changed)
        doc.object_changed.connect(lambda _obj: self._on_objects_changed())

    def install(self, window: QMainWindow) -> None:
        """Place the bar under the main toolbar and the list beside the objects."""
        window.addToolBarBreak()
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

    # ---- the interface for find-while-propagating ---------------------------------------------
    def accepted_phrases(self) -> list[str]:
        return list(self._phrases)

    # ---- finding ---------------------------------------------------------------------------
    @property
    def is_finding(self) -> bool:
        return self._request_id is not None

    def open_bar(self) -> None:
        self.bar.open()
        if not self._finder_ready and not self.bar.message.text():
            self.bar.say(NO_FINDER)

    def find(self) -> int | None:
        """Send a Find for the bar's phrase and the exemplars on the current frame."""
        typed = self.bar.phrase.text()
        phrase = clean_phrase(typed) or None
        if self._doc.num_frames == 0:
            self.bar.say("Open a video before finding objects")
            return None
        if phrase is None and not self.exemplars:
            self.bar.say("Type what to find, or drag a box around one with Find Similar (S)")
            return None
        if self.is_finding:
            self._client.cancel_find()
        boxes = labels = None
        if self.exemplars:
            boxes = np.array([box for box, _ in self.exemplars], np.float32)
            labels = np.array([positive for _, positive in self.exemplars], bool)
        self._request_id = self._client.find(self._doc.current_frame, phrase, boxes, labels)
        self._sent_text = self.bar.phrase.text()
        self.bar.set_running(True)
        what = f"Finding '{phrase}'" if phrase else "Finding similar objects"
        after = " after the propagation in progress" if self._client.is_propagating else ""
        note = cleaning_note(typed)
        self.bar.say(f"{what}{after}…" + (f" (the phrase: {note})" if note else ""))
        return self._request_id

    def escape(self) -> None:
        """Esc: cancel a running find; else reject every proposal shown (unless it stops a
        propagation: one Esc does one thing)."""
        if self.is_finding:
            self._client.cancel_find()
            self._request_id = None
            self.bar.set_running(False)
            self.bar.say("Find cancelled")
        elif (self.review is not None or self.exemplars) and not self._client.is_propagating:
            self.reject_all()

    def _on_find_ready(self, result: FindResult) -> None:
        if result.request_id != self._request_id:
            return  # cancelled, or replaced by a newer find
        self._request_id = None
        self.bar.set_running(False)
        if result.cancelled or result.error:
            self.bar.say("Find cancelled" if result.cancelled else result.error)
            return
        self.review = Review(result, self.rejected)
        read = " (the finder reads a phrase's first 32 tokens)" if result.truncated else ""
        self.bar.say(f"Found {len(self.review.pending)} in {result.seconds:.1f} s{read}")
        self._overlaps = {}
        self.dock.show()
        self.bar.show()
        self._show()
        self._finder_ready = True
        field = self.bar.phrase
        if field.hasFocus() and field.text() == self._sent_text and self._shown():
            self.list.focus_first()  # Enter there accepts all, Delete rejects one
        self.status_message.emit(
            f"Found {len(self.review.pending)} proposals in {result.seconds:.1f} s"
        )

    def _on_job_failed(self, error: JobError) -> None:
        if error.request_id == self._request_id:
            self._request_id = None
            self.bar.set_running(False)
            self.bar.say(f"Find failed: {error.message.splitlines()[0]}")

    def _on_finder_loaded(self, _info: object) -> None:
        self._finder_ready = True
        if self.bar.message.text() in (NO_FINDER, "Loading the finder…"):
            self.bar.say("Finder ready")

    def _on_activity(self, activity: Activity) -> None:
        if activity.action == "loading the finder":
            self.bar.say("Loading the finder…")

    # ---- review ----------------------------------------------------------------------------
    def _shown(self) -> list[Proposal]:
        return [] if self.review is None else self.review.shown(self.bar.threshold)

    def _overlap(self, proposal: Proposal) -> str:
        if proposal.rank not in self._overlaps:
            assert self.review is not None
            self._overlaps[proposal.rank] = overlapped_object(
                self._doc, self.review.frame, proposal
            )
        return self._overlaps[proposal.rank]

    def shown_proposals(self) -> list[ShownProposal]:
        """The proposals on show now, with what they overlap and which one is selected."""
        selected = self.list.selected_rank()
        return [ShownProposal(p, self._overlap(p), p.rank == selected) for p in self._shown()]

    def _show(self) -> None:
        shown = self.shown_proposals()
        reviewing = self.review is not None
        title = self.review.phrase if reviewing and self.review.phrase else "similar"
        if reviewing:
            assert self.review is not None
            pending = len(self.review.pending)
            heading = f"{len(shown)} of {pending} shown (score over {self.bar.threshold:.2f})"
            self.bar.count.setText(f"  {len(shown)} of {pending}  ")
        else:
            heading = "No proposals"
            self.bar.count.setText("")
        self.list.show_proposals(title, shown, heading)
        self.bar.set_reviewing(bool(shown))
        self._show_on_canvas(shown)

    def _show_on_canvas(self, shown: list[ShownProposal] | None = None) -> None:
        shown = self.shown_proposals() if shown is None else shown
        self.layer.show(shown, list(self.exemplars))

    def accept_all(self) -> None:
        """Accept every shown proposal that overlaps no object."""
        free = [p for p in self._shown() if not self._overlap(p)]
        if not free:
            if self.review is not None:
                self.bar.say("Nothing to accept: every proposal shown overlaps an object")
            return
        self._accept(free)

    def reject_all(self) -> None:
        for proposal in self._shown():
            self._reject(proposal)
        self.end_review()

    def _accept_ranks(self, ranks: list[int]) -> None:
        self._accept([p for p in self._shown() if p.rank in ranks])

    def _reject_ranks(self, ranks: list[int]) -> None:
        for proposal in [p for p in self._shown() if p.rank in ranks]:
            self._reject(proposal)
        self._after_change()

    def _accept(self, proposals: list[Proposal]) -> None:
        review = self.review
        if review is None or not proposals:
            return
        review.take(proposals)
        command = accept_command(self._doc, review.frame, review.phrase, proposals, self._mute)
        self._undo.push(command)
        self._canvas.setFocus()  # so Ctrl+Z undoes it, not the phrase field's typing
        self.bar.say(command.text())
        self.status_message.emit(command.text())
        self._after_change()

    def _reject(self, proposal: Proposal) -> None:
        assert self.review is not None
        self.rejected.reject(self.review.frame, self.review.phrase, proposal.mask)
        self.review.take([proposal])

    def _after_change(self) -> None:
        """Show what is left; the review ends when nothing is shown (those under the
        threshold go with it)."""
        self._overlaps = {}
        if self.review is not None and not self._shown():
            self.end_review()
        else:
            self._overlaps = {}
            self._show()

    def end_review(self, *, cancel: bool = False) -> None:
        """Drop the proposals and exemplars on show (and with `cancel` a running find)."""
        if cancel and self.is_finding:
            self.escape()
        self.review = None
        self.exemplars = []
        self._overlaps = {}
        self._show()

    # ---- canvas ----------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        enter = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if event.type() == QEvent.Type.KeyPress and self._shown():
            assert isinstance(event, QKeyEvent)
            plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if event.key() in enter and plain:
                self.accept_all()
                return True
        return super().eventFilter(watched, event)

    def _on_canvas_click(self, x: float, y: float, secondary: bool) -> bool:
        """A click on a proposal accepts it (right or Shift: rejects it)."""
        hit = self.proposal_at(x, y)
        if hit is None:
            return False
        if secondary:
            self._reject_ranks([hit.rank])
        else:
            self._accept([hit])
        return True

    def proposal_at(self, x: float, y: float) -> Proposal | None:
        """The smallest shown proposal whose mask holds pixel (x, y)."""
        xi, yi = int(x), int(y)
        hits = []
        for p in self._shown():
            m = p.mask
            h, w = m.crop.shape
            if m.x0 <= xi < m.x0 + w and m.y0 <= yi < m.y0 + h and m.crop[yi - m.y0, xi - m.x0]:
                hits.append((int(m.crop.sum()), p.rank, p))
        return min(hits, key=lambda t: t[:2])[2] if hits else None

    def _on_exemplar_drawn(
        self, x0: float, y0: float, x1: float, y1: float, positive: bool
    ) -> None:
        if self._doc.current_frame != self._exemplar_frame:
            self.exemplars = []
            self._exemplar_frame = self._doc.current_frame
        self.exemplars.append(((x0, y0, x1, y1), positive))
        self._show_on_canvas()
        self.find()

    # ---- document --------------------------------------------------------------------------
    def _on_video_changed(self) -> None:
        self.rejected.clear()
        self.end_review(cancel=True)
        self._on_objects_changed()

    def _on_masks_changed(self, frame: int) -> None:
        if self.review is not None and frame == self.review.frame:
            self._overlaps = {}
            self._show()

    def _on_objects_changed(self) -> None:
        phrases = accepted_phrases(self._doc)
        if phrases != self._phrases:
            self._phrases = phrases
            self.phrases_accepted.emit(list(phrases))


class FindHost(Protocol):
    """What `install_find` needs of the main window."""

    document: AnnotationDocument
    undo_stack: QUndoStack
    client: WorkerClient
    canvas: FrameCanvas
    actions: AppActions
    session: Any

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name


def install_find(window: FindHost) -> FindController:
    """The window's Find: its bar, its proposals dock, the find-similar tool (S)."""
    controller = FindController(
        window.document,
        window.undo_stack,
        window.client,
        window.canvas,
        window.actions,
        mute=window.session.set_muted,
        parent=window,  # type: ignore[arg-type]
    )
    assert isinstance(window, QMainWindow)
    controller.install(window)
    controller.status_message.connect(lambda text: window.statusBar().showMessage(text, 5000))
    controller.tool_actions = ToolActions(
        window.canvas, {Tool.FIND_SIMILAR: window.actions.find_similar_tool}
    )
    return controller
