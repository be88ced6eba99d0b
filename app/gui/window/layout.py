"""Arranges the main window: toolbar, menus, canvas, object dock, timeline, status bar.

The window creates its widgets and hands them here to be placed (`build_layout`); this
module creates only containers, menus and the opacity slider, and returns what the window
connects (`WindowLayout`). It never imports the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QScrollArea,
    QSlider,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.actions import AppActions

_TOOLBAR = (
    ("open_video", "open_project", "save"),
    ("undo", "redo"),
    ("new_object", "delete_object", "clear_frame"),
    ("point_tool", "brush_tool", "eraser_tool", "find_similar_tool"),
    ("propagate_backward", "propagate_both", "propagate_forward", "cancel"),
    ("toggle_overlays", "zoom_fit", "choose_model"),
)
_TRANSPORT = (
    "first_frame",
    "prev_keyframe",
    "step_back_10",
    "step_back",
    "play",
    "step_forward",
    "step_forward_10",
    "next_keyframe",
    "last_frame",
)
_MENUS = (
    (
        "&File",
        (
            "open_video",
            "open_project",
            None,
            "save",
            "save_as",
            "import_annotations",
            "export",
            None,
            "quit",
        ),
    ),
    (
        "&Edit",
        (
            "undo",
            "redo",
            None,
            "new_object",
            "delete_object",
            "clear_frame",
            None,
            "find_objects",
            None,
            "point_tool",
            "brush_tool",
            "eraser_tool",
            "find_similar_tool",
        ),
    ),
    (
        "&View",
        ("toggle_overlays", "opacity_up", "opacity_down", None, "zoom_fit", "zoom_in", "zoom_out"),
    ),
    ("&Playback", ("play", None, "step_back", "step_forward", "step_back_10", "step_forward_10")),
    (
        "&Go",
        (
            "first_frame",
            "last_frame",
            None,
            "prev_keyframe",
            "next_keyframe",
            None,
            "prev_doubtful",
            "next_doubtful",
            "doubtful_threshold",
        ),
    ),
    (
        "&Track",
        (
            "propagate_forward",
            "propagate_backward",
            "propagate_both",
            None,
            "follow",
            "cancel",
            None,
            "find_while_propagating",
            "find_every",
        ),
    ),
    ("&Model", ("choose_model",)),
    ("&Help", ("help", "about")),
)


@dataclass(frozen=True)
class WindowParts:
    """The widgets the window created, for `build_layout` to place."""

    canvas: QWidget
    scrub: QWidget
    tracks: QWidget
    panel: QWidget
    progress: QWidget
    engine_status: QWidget


@dataclass(frozen=True)
class WindowLayout:
    """What `build_layout` created that the window and its commands fill or connect."""

    recent_menu: QMenu
    model_menu: QMenu
    device_menu: QMenu
    precision_submenu: QMenu
    input_size_submenu: QMenu
    opacity_slider: QSlider


def build_layout(
    w: QMainWindow, actions: AppActions, parts: WindowParts, *, opacity: float
) -> WindowLayout:
    recent, model, device, precision, input_size = _build_menus(w.menuBar(), actions)
    _build_toolbar(w, actions)
    w.setCentralWidget(_build_center(actions, parts))
    slider = _build_dock(w, parts.panel, opacity)
    status = w.statusBar()
    status.addPermanentWidget(parts.progress)
    status.addPermanentWidget(parts.engine_status)
    return WindowLayout(recent, model, device, precision, input_size, slider)


def _build_menus(bar: QMenuBar, actions: AppActions) -> tuple[QMenu, QMenu, QMenu, QMenu, QMenu]:
    """The menus; returns those filled later: recent files, Model, device, precision, size."""
    recent = model = device = precision = input_size = None
    for title, names in _MENUS:
        menu = bar.addMenu(title)
        for name in names:
            if name is None:
                menu.addSeparator()
            else:
                menu.addAction(actions[name])
            if name == "open_project":
                recent = menu.addMenu("Open &Recent")
        if title == "&Model":
            model = menu
            device = menu.addMenu("&Device")
            precision = menu.addMenu("&Precision")
            input_size = menu.addMenu("&Input Size")
    assert recent is not None and model is not None
    assert device is not None and precision is not None and input_size is not None
    return recent, model, device, precision, input_size


def _build_toolbar(w: QMainWindow, actions: AppActions) -> None:
    toolbar = QToolBar("Main")
    toolbar.setObjectName("mainToolbar")
    toolbar.setIconSize(QSize(20, 20))
    toolbar.setMovable(False)
    for i, group in enumerate(_TOOLBAR):
        if i:
            toolbar.addSeparator()
        for name in group:
            toolbar.addAction(actions[name])
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)


def _build_center(actions: AppActions, parts: WindowParts) -> QWidget:
    timeline = QFrame()
    timeline.setObjectName("timelinePanel")
    column = QVBoxLayout(timeline)
    column.setContentsMargins(6, 4, 6, 4)
    row = QHBoxLayout()
    for name in _TRANSPORT:
        button = QToolButton()
        button.setDefaultAction(actions[name])
        button.setAutoRaise(True)
        button.setIconSize(QSize(18, 18))
        row.addWidget(button)
    row.addSpacing(8)
    row.addWidget(parts.scrub, 1)
    column.addLayout(row)
    scroll = QScrollArea()
    scroll.setWidget(parts.tracks)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setMinimumHeight(60)
    column.addWidget(scroll, 1)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setObjectName("mainSplitter")
    splitter.addWidget(parts.canvas)
    splitter.addWidget(timeline)
    splitter.setStretchFactor(0, 5)
    splitter.setStretchFactor(1, 1)
    splitter.setSizes([640, 150])
    return splitter


def _build_dock(w: QMainWindow, objects: QWidget, opacity: float) -> QSlider:
    """The objects dock, with the mask opacity slider under the list; returns the slider."""
    panel = QWidget()
    column = QVBoxLayout(panel)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(objects, 1)
    opacity_row = QHBoxLayout()
    opacity_row.setContentsMargins(8, 0, 8, 8)
    opacity_row.addWidget(QLabel("Mask opacity"))
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(round(opacity * 100))
    slider.setToolTip("Opacity of the mask fill ([ and ])")
    opacity_row.addWidget(slider, 1)
    column.addLayout(opacity_row)
    dock = QDockWidget("Objects")
    dock.setObjectName("objectsDock")
    dock.setWidget(panel)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    dock.setMinimumWidth(260)
    w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return slider
