"""Track > Find New Instances While Propagating (off by default) and Find Every N Frames….

When it is on, a propagation asks the worker to run the finder every N frames (default 16,
kept in the settings) with the phrases accepted so far (the Find controller's
`accepted_phrases()`), and each new instance the worker reports (`pass_finding`) becomes an
object here, in the document that owns object ids: "PHRASE N", category the phrase, the
found mask as its keyframe on that frame, one undo step per frame searched (undo removes
those objects, in the engine too; redo adds them back). Their mask prompts reach the
running pass like any edit made during it. Nothing tracked is replaced or deleted; the
status bar says how many were added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QUndoStack
from PySide6.QtWidgets import QInputDialog, QStatusBar, QWidget

from app.gui.document.annotations import AnnotationDocument, MaskletObject
from app.gui.document.commands import ImportObjectsCommand
from app.gui.document.label_commands import AddLabelsCommand
from app.gui.files.finder_loading import FinderLoading
from app.gui.settings import AppSettings
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import DEFAULT_FIND_THRESHOLD, FoundInPass, PassFind, PropagationSummary
from app.project.found import numbered_names

__all__ = ["FindWhilePropagating", "attach_finding", "find_settings_of"]

MAX_EVERY = 100_000


class FindingHost(Protocol):
    """The parts of the window this uses (the window itself, in the app)."""

    document: AnnotationDocument
    undo_stack: QUndoStack
    client: WorkerClient
    settings: AppSettings

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name


class FindWhilePropagating(QObject):
    """Builds each propagation's `PassFind` and turns what it finds into objects."""

    def __init__(
        self,
        host: FindingHost,
        finder: FinderLoading,
        toggle: QAction,
        every_action: QAction,
        *,
        phrases: Callable[[], list[str]],
        threshold: Callable[[], float] = lambda: DEFAULT_FIND_THRESHOLD,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._host, self._finder, self.toggle = host, finder, toggle
        self._phrases, self._threshold = phrases, threshold
        self.added = 0  # objects added during the current (or last) propagation
        self._show_every(every_action)
        toggle.setChecked(False)
        toggle.toggled.connect(self._on_toggled)
        every_action.triggered.connect(self.ask_every)
        self._every_action = every_action
        finder.loaded.connect(self._on_finder_loaded)
        host.client.found_in_pass.connect(self._on_found)
        host.client.propagation_finished.connect(self._on_propagation_finished)

    def _status(self, text: str, ms: int = 8000) -> None:
        self._host.statusBar().showMessage(text, ms)

    def _show_every(self, action: QAction) -> None:
        action.setText(f"Find &Every {self._host.settings.find_every} Frames…")

    # ---- settings --------------------------------------------------------------------------
    def set_every(self, every: int) -> None:
        self._host.settings.find_every = every
        self._show_every(self._every_action)

    def ask_every(self) -> None:
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        every, ok = QInputDialog.getInt(
            parent,
            "Find while propagating",
            "Run the finder every N frames of a propagation:",
            self._host.settings.find_every,
            1,
            MAX_EVERY,
        )
        if ok:
            self.set_every(every)

    @Slot(bool)
    def _on_toggled(self, on: bool) -> None:
        if not on:
            self._status("New instances are no longer found while propagating")
            return
        every = self._host.settings.find_every
        finder = self._finder
        if not finder.ensure_loaded():
            self._status("Finding while propagating needs a finder: Model > Choose Model… (Ctrl+M)")
        elif finder.is_loading:
            return  # "Loading the finder…" stays until it has loaded
        elif not self._phrases():
            self._status("Find objects by name first (Ctrl+F): their phrases are found again")
        else:
            self._status(f"Propagations now find new {self._described()} every {every} frames")

    @Slot(object)
    def _on_finder_loaded(self, _info: object) -> None:
        if self.toggle.isChecked():
            self._on_toggled(True)  # toggled on while the finder loaded: say what happens now

    def _described(self) -> str:
        return ", ".join(f"'{p}'" for p in self._phrases())

    # ---- a propagation ---------------------------------------------------------------------
    def spec(self) -> PassFind | None:
        """What the next propagation should find; None when off or nothing to find with."""
        self.added = 0
        if not self.toggle.isChecked():
            return None
        phrases = tuple(self._phrases())
        if not phrases or not self._finder.ensure_loaded():
            self._on_toggled(True)  # says what is missing
            return None
        return PassFind(phrases, self._host.settings.find_every, float(self._threshold()))

    @Slot(object)
    def _on_found(self, found: FoundInPass) -> None:
        doc = self._host.document
        if found.error:
            self._status(f"Find while propagating: {found.error}", 10000)
            return
        if not found.masks or doc.num_frames == 0:
            return
        objects = self._new_objects(doc, found)
        pairs = zip(objects, found.masks, strict=True)
        keyframes = {o.obj_id: {found.frame: rle} for o, rle in pairs}
        text = f"Found {len(objects)} new on frame {found.frame} while propagating"
        command = ImportObjectsCommand(doc, objects, keyframes, text=text)
        active = doc.active_object
        labels = list(dict.fromkeys(found.phrases))
        self._host.undo_stack.push(AddLabelsCommand(doc, command, labels))
        doc.set_active_object(active)  # the user's selection stays while the pass runs
        self.added += len(objects)
        shown = ", ".join(o.name for o in objects)
        self._status(f"Found {len(objects)} new on frame {found.frame}: {shown}")

    @staticmethod
    def _new_objects(doc: AnnotationDocument, found: FoundInPass) -> list[MaskletObject]:
        """New objects for `found` (one per instance, in order), named and numbered per
        phrase, each keeping the finder's score."""
        phrases = found.phrases
        counts: dict[str, int] = {}
        for phrase in phrases:
            counts[phrase] = counts.get(phrase, 0) + 1
        names = {
            p: iter(numbered_names((o.name for o in doc.objects()), p, n))
            for p, n in counts.items()
        }
        objects = []
        for phrase, score in zip(phrases, found.scores, strict=True):
            obj_id = doc.next_object_id()
            color = doc.default_object(obj_id).color
            name = next(names[phrase])
            objects.append(MaskletObject(obj_id, name, phrase, color, True, score))
        return objects

    @Slot(object)
    def _on_propagation_finished(self, summary: PropagationSummary) -> None:
        if not self.added:
            return
        verb = "cancelled after" if summary.cancelled else "finished:"
        self._status(
            f"Propagation {verb} {summary.frames} frames; {self.added} new "
            f"object{'s' if self.added != 1 else ''} found while propagating",
            10000,
        )


def attach_finding(window: Any) -> tuple[FinderLoading, FindWhilePropagating]:
    """The window's finder loading and find-while-propagating, wired to its actions. Call it
    after the window's own connections: their status lines then follow the window's."""
    finder = FinderLoading(window.client, window.settings, window.statusBar(), window)
    actions = window.actions
    # Opening the Find bar (Edit > Find Objects, Ctrl+F) loads a remembered finder.
    find_objects = getattr(actions, "find_objects", None)
    if find_objects is not None:
        find_objects.triggered.connect(finder.ensure_loaded)
    phrases, threshold = find_settings_of(window)
    pass_finds = FindWhilePropagating(
        window,
        finder,
        actions.find_while_propagating,
        actions.find_every,
        phrases=phrases,
        threshold=threshold,
        parent=window,
    )
    return finder, pass_finds


def find_settings_of(window: Any) -> tuple[Callable[[], list[str]], Callable[[], float]]:
    """The phrases accepted so far and the Find bar's score threshold, read from the window's
    Find controller (`window.find_controller`) when a propagation starts."""

    def phrases() -> list[str]:
        return list(window.find_controller.accepted_phrases())

    def threshold() -> float:
        bar = getattr(window.find_controller, "bar", None)
        return float(bar.threshold) if bar is not None else DEFAULT_FIND_THRESHOLD

    return phrases, threshold
