"""Arranges the main window: toolbar, menus, canvas, object dock, timeline, status bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

_TOOLBAR = (
    ("open_video", "open_project", "save"),
    ("undo", "redo"),
    ("new_object", "delete_object", "clear_frame"),
    ("point_tool", "brush_tool", "eraser_tool"),
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
            "point_tool",
            "brush_tool",
            "eraser_tool",
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
        ("propagate_forward", "propagate_backward", "propagate_both", None, "follow", "cancel"),
    ),
    ("&Model", ("choose_model",)),
    ("&Help", ("help", "about")),
)


def build_layout(w: MainWindow) -> None:
    _build_menus(w)
    _build_toolbar(w)
    w.setCentralWidget(_build_center(w))
    _build_dock(w)
    status = w.statusBar()
    status.addPermanentWidget(w.progress)
    status.addPermanentWidget(w.engine_status)


def _build_menus(w: MainWindow) -> None:
    bar = w.menuBar()
    for title, names in _MENUS:
        menu = bar.addMenu(title)
        for name in names:
            if name is None:
                menu.addSeparator()
            else:
                menu.addAction(w.actions[name])
            if name == "open_project":
                w.recent_menu = menu.addMenu("Open &Recent")
        if title == "&Model":
            w.model_menu = menu
            w.device_menu = menu.addMenu("&Device")
            w.precision_submenu = menu.addMenu("&Precision")
            w.input_size_submenu = menu.addMenu("&Input Size")


def _build_toolbar(w: MainWindow) -> None:
    toolbar = QToolBar("Main")
    toolbar.setObjectName("mainToolbar")
    toolbar.setIconSize(QSize(20, 20))
    toolbar.setMovable(False)
    for i, group in enumerate(_TOOLBAR):
        if i:
            toolbar.addSeparator()
        for name in group:
            toolbar.addAction(w.actions[name])
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)


def _build_center(w: MainWindow) -> QWidget:
    timeline = QFrame()
    timeline.setObjectName("timelinePanel")
    column = QVBoxLayout(timeline)
    column.setContentsMargins(6, 4, 6, 4)
    row = QHBoxLayout()
    for name in _TRANSPORT:
        button = QToolButton()
        button.setDefaultAction(w.actions[name])
        button.setAutoRaise(True)
        button.setIconSize(QSize(18, 18))
        row.addWidget(button)
    row.addSpacing(8)
    row.addWidget(w.scrub, 1)
    column.addLayout(row)
    scroll = QScrollArea()
    scroll.setWidget(w.tracks)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setMinimumHeight(60)
    column.addWidget(scroll, 1)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setObjectName("mainSplitter")
    splitter.addWidget(w.canvas)
    splitter.addWidget(timeline)
    splitter.setStretchFactor(0, 5)
    splitter.setStretchFactor(1, 1)
    splitter.setSizes([640, 150])
    return splitter


def _build_dock(w: MainWindow) -> None:
    panel = QWidget()
    column = QVBoxLayout(panel)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(w.panel, 1)
    opacity_row = QHBoxLayout()
    opacity_row.setContentsMargins(8, 0, 8, 8)
    opacity_row.addWidget(QLabel("Mask opacity"))
    w.opacity_slider = QSlider(Qt.Orientation.Horizontal)
    w.opacity_slider.setRange(0, 100)
    w.opacity_slider.setValue(round(w.canvas_ctl.opacity * 100))
    w.opacity_slider.setToolTip("Opacity of the mask fill ([ and ])")
    opacity_row.addWidget(w.opacity_slider, 1)
    column.addLayout(opacity_row)
    dock = QDockWidget("Objects")
    dock.setObjectName("objectsDock")
    dock.setWidget(panel)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    dock.setMinimumWidth(260)
    w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
