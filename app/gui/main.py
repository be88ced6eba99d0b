"""`masklet [VIDEO]`: create the application and the main window, and run the event loop."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.autosave import Autosaver
from app.gui.engine import Engine, real_engine
from app.gui.main_window import MainWindow
from app.gui.settings import APPLICATION, ORGANIZATION, AppSettings
from app.gui.styles import apply_style


def create_window(
    *,
    engine: Engine | None = None,
    settings: AppSettings | None = None,
    autosaver: Autosaver | None = None,
) -> MainWindow:
    """The main window with the real engine, user settings and autosave unless given."""
    settings = settings or AppSettings()
    window = MainWindow(
        engine=engine or real_engine(),
        settings=settings,
        autosaver=autosaver if autosaver is not None else Autosaver(),
    )
    if settings.checkpoint:
        window.load_model(settings.checkpoint, settings.device)
    return window


def start(window: MainWindow, video: str | None) -> None:
    """What happens once the window shows: recovery offer, the video, a model if none."""
    if window.offer_recovery():
        return
    if video:
        window.open_path(video)
    if not window.settings.checkpoint:
        window.choose_model()


def run_app(video: str | None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    apply_style(app)
    window = create_window()
    window.show()
    QTimer.singleShot(0, lambda: start(window, video))
    return app.exec()
