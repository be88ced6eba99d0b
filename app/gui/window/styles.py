"""The app's look: Fusion style with a dark palette and a few stylesheet touches."""

from __future__ import annotations

import qtawesome
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

_STYLESHEET = """
QToolBar { spacing: 2px; padding: 2px; border: none; }
QFrame#timelinePanel { background: #26272b; }
QDockWidget::title { padding: 4px; background: #2d2e33; }
QTableView { gridline-color: #3a3b40; }
QStatusBar QLabel { padding: 0 2px; }
"""


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(32, 33, 36), QColor(43, 44, 48), QColor(225, 226, 230)
    for role, color in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Highlight, QColor(64, 128, 220)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(100, 160, 255)),
    ):
        p.setColor(role, color)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 125))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 125))
    return p


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(_STYLESHEET)
    qtawesome.set_defaults(color=QColor(215, 217, 222), color_disabled=QColor(95, 96, 102))
