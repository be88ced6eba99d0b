"""Frame navigation: play/pause, frame steps, first/last frame, keyframe and doubtful jumps.

`FrameNavigator` connects the navigation actions to the document's current frame; the
main window builds it and keeps no navigation logic of its own.
"""

from __future__ import annotations

import qtawesome
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.gui.actions import AppActions
from app.gui.document.annotations import AnnotationDocument
from app.gui.timeline.confidence import DoubtfulNavigator
from app.gui.timeline.widgets import Playback

# Action name -> frames it moves by.
_STEPS = (("step_back", -1), ("step_forward", 1), ("step_back_10", -10), ("step_forward_10", 10))


class FrameNavigator(QObject):
    """Moves the document's current frame on the navigation actions."""

    def __init__(
        self,
        document: AnnotationDocument,
        playback: Playback,
        actions: AppActions,
        doubtful: DoubtfulNavigator,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._playback = playback
        self._actions = actions
        a, doc = actions, document
        a.play.triggered.connect(playback.toggle)
        playback.playing_changed.connect(self._on_playing_changed)
        for name, delta in _STEPS:
            a[name].triggered.connect(lambda _=False, d=delta: self.step(d))
        a.first_frame.triggered.connect(lambda: doc.set_current_frame(0))
        a.last_frame.triggered.connect(lambda: doc.set_current_frame(doc.num_frames - 1))
        a.prev_keyframe.triggered.connect(lambda: self.jump_keyframe(-1))
        a.next_keyframe.triggered.connect(lambda: self.jump_keyframe(1))
        a.prev_doubtful.triggered.connect(lambda: doubtful.jump(-1))
        a.next_doubtful.triggered.connect(lambda: doubtful.jump(1))
        a.doubtful_threshold.triggered.connect(lambda: doubtful.ask_threshold(parent))

    def step(self, delta: int) -> None:
        self._playback.stop()
        self._doc.set_current_frame(self._doc.current_frame + delta)

    def jump_keyframe(self, direction: int) -> None:
        """To the nearest keyframe of any object after (direction > 0) or before the current."""
        current = self._doc.current_frame
        frames = self._doc.all_keyframes()
        if direction > 0:
            later = [f for f in frames if f > current]
            target = later[0] if later else None
        else:
            earlier = [f for f in frames if f < current]
            target = earlier[-1] if earlier else None
        if target is not None:
            self._doc.set_current_frame(target)

    def _on_playing_changed(self, playing: bool) -> None:
        self._actions.play.setIcon(qtawesome.icon("mdi6.pause" if playing else "mdi6.play"))
