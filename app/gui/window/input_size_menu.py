"""Model > Input Size: 1024 (the default), 768 or 512 pixels, per project.

The model sees every frame resized to a square of this size. Smaller is faster at some
cost in detail (thin parts, small objects): the factors in the tooltips were measured on
this project's 2-core CPU with `scripts/bench_input_size.py` (see there and the README).

The choice lives in the project's settings (`"image_size"`; a project without it is at
1024), so it is saved and reopened with the project; a new video keeps the current one.
Changing it reloads the model at that size in the worker, like Model > Choose Model;
the size is part of the engine state's identity (`app.project.state_identity`), so a state saved
at another size is never reused, and the masks of the model before are marked
(`app.gui.worker.model_change`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from app.gui.settings import AppSettings

SETTING = "image_size"
DEFAULT_SIZE = 1024
SIZES = (1024, 768, 512)
# Seconds a tracked frame takes at 1024 over the seconds at this size: sam2.1-tiny at
# random init, one object, 480x640 frames, steady state (scripts/bench_input_size.py: the
# sizes interleaved frame by frame, medians of 12 frames over 2 propagations). Two runs on
# the 2-core AMD EPYC here, shared with other work (1024 at 41 and 75 s a frame under that
# load, 2.2 s quiet): 2.74x and 2.66x at 768, 7.83x and 8.30x at 512. Memory attention,
# about half a frame at 1024, is quadratic in the 64x64 tokens, hence more than 4x at 512.
SPEEDUP = {768: 2.7, 512: 8.0}


def project_size(settings: dict) -> int:
    """The input size a project's settings ask for; anything but a listed size is 1024."""
    value = settings.get(SETTING, DEFAULT_SIZE)
    return value if type(value) is int and value in SIZES else DEFAULT_SIZE


def _tooltip(size: int) -> str:
    if size == DEFAULT_SIZE:
        return "1024 px: the size SAM 2.1 was trained at; the most detail"
    return (
        f"{size} px: a tracked frame about {SPEEDUP[size]:.1f}x as fast as at 1024 on this "
        "CPU (measured), with less detail on thin parts and small objects"
    )


class InputSizeMenu(QObject):
    """The three radio choices; keeps the project's setting and the worker's model in step.

    `settings` is the project's settings dict (`ProjectController.settings`), read through
    `get_settings` because opening a project replaces it; `load_model(checkpoint, device)`
    (the window's) loads the app's chosen model again and calls back `load_size`;
    `changed` tells the window the project changed (unsaved); `same_model` runs after a
    project opened at the size the model already runs at (a reload at another size does
    its work when it has loaded)."""

    def __init__(
        self,
        menu: QMenu,
        *,
        get_settings: Callable[[], dict],
        app_settings: AppSettings,
        load_model: Callable[[str, str], None],
        changed: Callable[[], None],
        same_model: Callable[[], None],
    ) -> None:
        super().__init__(menu)
        self._settings = get_settings
        self._app_settings = app_settings
        self._load_model = load_model
        self._changed = changed
        self._same_model = same_model
        self._sent: int | None = None  # the size of the last model load asked for
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        menu.setToolTipsVisible(True)
        self._actions: dict[int, QAction] = {}
        for size in SIZES:
            text = f"&{size}" + (" (default)" if size == DEFAULT_SIZE else "")
            action = QAction(text, menu)
            action.setCheckable(True)
            action.setToolTip(_tooltip(size))
            action.setData(size)
            self.group.addAction(action)
            menu.addAction(action)
            self._actions[size] = action
        self._actions[DEFAULT_SIZE].setChecked(True)
        self.group.triggered.connect(self._on_triggered)

    def action(self, size: int) -> QAction:
        return self._actions[size]

    @property
    def size(self) -> int:
        return project_size(self._settings())

    def load_size(self) -> int | None:
        """The size for a model load now being sent; None (the checkpoint's own) at 1024."""
        self._sent = self.size
        return None if self._sent == DEFAULT_SIZE else self._sent

    def project_opened(self) -> None:
        """Show the project's size, and reload the model if it runs at another."""
        self._actions[self.size].setChecked(True)
        if not (self._sent is not None and self._sent != self.size and self._reload()):
            self._same_model()

    def _reload(self) -> bool:
        """Load the app's model again, at the project's size; False while none is chosen."""
        if not self._app_settings.checkpoint:
            return False
        self._load_model(self._app_settings.checkpoint, self._app_settings.device)
        return True

    def _on_triggered(self, action: QAction) -> None:
        size = int(action.data())
        if size == self.size:
            return
        self._settings()[SETTING] = size
        self._changed()
        if not self._reload():
            self._sent = None
