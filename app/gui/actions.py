"""Every user command as a QAction with its icon and shortcut, in one table.

The same table fills the menus, the toolbar and the help dialog, so a shortcut listed
in help is always the one that works.
"""

from __future__ import annotations

from dataclasses import dataclass

import qtawesome
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    icon: str | None
    shortcuts: tuple[str, ...]
    group: str
    checkable: bool = False


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open_video", "&Open Video…", "mdi6.movie-open-outline", ("Ctrl+O",), "File"),
    ActionSpec(
        "open_project", "Open &Project…", "mdi6.folder-open-outline", ("Ctrl+Shift+O",), "File"
    ),
    ActionSpec("save", "&Save Project", "mdi6.content-save-outline", ("Ctrl+S",), "File"),
    ActionSpec(
        "save_as", "Save Project &As…", "mdi6.content-save-edit-outline", ("Ctrl+Shift+S",), "File"
    ),
    ActionSpec("import_annotations", "&Import Annotations…", "mdi6.import", ("Ctrl+I",), "File"),
    ActionSpec("export", "&Export…", "mdi6.export", ("Ctrl+E",), "File"),
    ActionSpec("quit", "&Quit", "mdi6.exit-to-app", ("Ctrl+Q",), "File"),
    ActionSpec("undo", "&Undo", "mdi6.undo", ("Ctrl+Z",), "Edit"),
    ActionSpec("redo", "&Redo", "mdi6.redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    ActionSpec("new_object", "&New Object", "mdi6.plus-circle-outline", ("N",), "Edit"),
    ActionSpec("delete_object", "&Delete Object", "mdi6.delete-outline", ("Delete",), "Edit"),
    ActionSpec(
        "clear_frame", "&Clear Prompts on Frame", "mdi6.backspace-outline", ("Backspace",), "Edit"
    ),
    ActionSpec("find_objects", "&Find Objects…", "mdi6.magnify-scan", ("Ctrl+F",), "Edit"),
    ActionSpec(
        "point_tool", "&Point Tool", "mdi6.cursor-default-click-outline", ("V",), "Tools", True
    ),
    ActionSpec("brush_tool", "&Brush", "mdi6.brush", ("B",), "Tools", checkable=True),
    ActionSpec("eraser_tool", "&Eraser", "mdi6.eraser-variant", ("E",), "Tools", checkable=True),
    ActionSpec("find_similar_tool", "Find &Similar", "mdi6.vector-square", ("S",), "Tools", True),
    ActionSpec("play", "&Play / Pause", "mdi6.play", ("K",), "Playback"),
    ActionSpec("step_back", "Step &Back", "mdi6.step-backward", ("Left",), "Playback"),
    ActionSpec("step_forward", "Step &Forward", "mdi6.step-forward", ("Right",), "Playback"),
    ActionSpec("step_back_10", "Back 10 Frames", "mdi6.rewind-10", ("Shift+Left",), "Playback"),
    ActionSpec(
        "step_forward_10", "Forward 10 Frames", "mdi6.fast-forward-10", ("Shift+Right",), "Playback"
    ),
    ActionSpec("first_frame", "First Frame", "mdi6.skip-previous", ("Home",), "Playback"),
    ActionSpec("last_frame", "Last Frame", "mdi6.skip-next", ("End",), "Playback"),
    ActionSpec(
        "prev_keyframe", "Previous Keyframe", "mdi6.chevron-double-left", (",",), "Playback"
    ),
    ActionSpec("next_keyframe", "Next Keyframe", "mdi6.chevron-double-right", (".",), "Playback"),
    ActionSpec(
        "prev_doubtful",
        "Previous &Doubtful Frame",
        "mdi6.chevron-left-circle-outline",
        ("Ctrl+,",),
        "Playback",
    ),
    ActionSpec(
        "next_doubtful",
        "Next Doubtful &Frame",
        "mdi6.chevron-right-circle-outline",
        ("Ctrl+.",),
        "Playback",
    ),
    ActionSpec("doubtful_threshold", "Doubtful &Threshold…", "mdi6.tune-variant", (), "Playback"),
    ActionSpec(
        "propagate_forward",
        "Propagate &Forward",
        "mdi6.arrow-right-bold-box-outline",
        ("T",),
        "Track",
    ),
    ActionSpec(
        "propagate_backward",
        "Propagate &Backward",
        "mdi6.arrow-left-bold-box-outline",
        ("Shift+T",),
        "Track",
    ),
    ActionSpec(
        "propagate_both", "Propagate B&oth Ways", "mdi6.arrow-left-right-bold", ("Ctrl+T",), "Track"
    ),
    ActionSpec("cancel", "&Cancel", "mdi6.stop-circle-outline", ("Esc",), "Track"),
    ActionSpec(
        "find_while_propagating",
        "Find New &Instances While Propagating",
        "mdi6.text-search",
        (),
        "Track",
        checkable=True,
    ),
    ActionSpec("find_every", "Find &Every N Frames…", None, (), "Track"),
    ActionSpec(
        "follow", "Fo&llow Propagation", "mdi6.crosshairs-gps", ("L",), "Track", checkable=True
    ),
    ActionSpec(
        "toggle_overlays", "Show &Overlays", "mdi6.layers-outline", ("O",), "View", checkable=True
    ),
    ActionSpec("opacity_up", "More Opaque Masks", "mdi6.opacity", ("]",), "View"),
    ActionSpec("opacity_down", "More Transparent Masks", None, ("[",), "View"),
    ActionSpec("zoom_fit", "Zoom to &Fit", "mdi6.fit-to-screen-outline", ("F",), "View"),
    ActionSpec("zoom_in", "Zoom &In", "mdi6.magnify-plus-outline", ("+", "="), "View"),
    ActionSpec("zoom_out", "Zoom O&ut", "mdi6.magnify-minus-outline", ("-",), "View"),
    ActionSpec("choose_model", "Choose &Model…", "mdi6.brain", ("Ctrl+M",), "Model"),
    ActionSpec("help", "&Keyboard Shortcuts", "mdi6.keyboard-outline", ("F1",), "Help"),
    ActionSpec("about", "&About Masklet", "mdi6.information-outline", (), "Help"),
)


# Mouse gestures of the brush and eraser tools, for the help dialog and the README.
BRUSH_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Canvas", "Paint (Brush) / erase (Eraser)", "Left drag; Right drag does the opposite"),
    ("Canvas", "Brush size", "Ctrl+wheel (brush or eraser tool)"),
    ("Canvas", "Back to points from a brush", "Esc, V, or the tool's key again"),
)


# Gestures of the Find bar's proposals and the find-similar tool (app/gui/find/).
FIND_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Canvas", "Accept a proposal / reject it", "Left click on it / Right click, Shift+click"),
    ("Canvas", "Accept all proposals shown / reject all", "Enter / Esc"),
    ("Canvas", "Find similar: like this / not like this", "Left drag / Right drag, Shift+drag"),
)


# Keys 1-9 (app/gui/window/labels_ui.py), one row for nine actions.
LABEL_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Edit", "Give the selected object label 1-9 (Edit > Labels…)", "1 … 9"),
)


class AppActions:
    """All actions by name (`actions.play`, `actions["save"]`), parented to the main window."""

    def __init__(self, parent: QWidget) -> None:
        self._actions: dict[str, QAction] = {}
        for spec in SPECS:
            action = QAction(spec.text, parent)
            if spec.icon:
                action.setIcon(qtawesome.icon(spec.icon))
            action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            action.setCheckable(spec.checkable)
            if spec.shortcuts:
                action.setToolTip(f"{spec.text.replace('&', '').rstrip('…')} ({spec.shortcuts[0]})")
            parent.addAction(action)
            self._actions[spec.name] = action

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def __getattr__(self, name: str) -> QAction:
        try:
            return self._actions[name]
        except KeyError:
            raise AttributeError(name) from None

    def in_group(self, group: str) -> list[QAction]:
        return [self._actions[s.name] for s in SPECS if s.group == group]


def shortcut_table() -> list[tuple[str, str, str]]:
    """(group, action, shortcuts) rows for the help dialog and the README."""
    rows = []
    for spec in SPECS:
        if spec.shortcuts:
            text = spec.text.replace("&", "").rstrip("…")
            keys = ", ".join(
                QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                for s in spec.shortcuts
            )
            rows.append((spec.group, text, keys))
    rows += [
        *LABEL_ROWS,
        ("Canvas", "Positive point", "Left click"),
        ("Canvas", "Negative point", "Right click, Shift+Left click"),
        ("Canvas", "Box", "Left drag"),
        ("Canvas", "Remove point or box", "Ctrl+click, Alt+click"),
        ("Canvas", "Zoom around cursor", "Mouse wheel"),
        ("Canvas", "Pan", "Middle drag, Space+drag"),
        *BRUSH_ROWS,
        *FIND_ROWS,
    ]
    return rows
