"""`masklet [VIDEO]`: create the application and the main window, and run the event loop."""

from __future__ import annotations

import logging
import os
import sys

from PySide6.QtCore import QMessageLogContext, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from app.gui.settings import APPLICATION, ORGANIZATION, AppSettings
from app.gui.window.main_window import MainWindow
from app.gui.window.platform_hint import platform_hint
from app.gui.window.styles import apply_style
from app.gui.worker.client import running_worker_threads
from app.gui.worker.engine import Engine, real_engine
from app.project.autosave import Autosaver
from model.kernels.threads import configure_threads


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


def _on_qt_message(kind: QtMsgType, _context: QMessageLogContext, message: str) -> None:
    """Qt's messages while the application starts; a missing platform plugin is fatal to
    Qt, so say what to do in one line and exit instead of letting Qt abort."""
    if kind == QtMsgType.QtFatalMsg and "platform plugin" in message:
        print(platform_hint(), file=sys.stderr, flush=True)
        os._exit(1)  # Qt aborts right after this handler returns; exit cleanly first.
    print(message, file=sys.stderr)


def _create_application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    previous = qInstallMessageHandler(_on_qt_message)
    try:
        return QApplication(sys.argv)
    finally:
        qInstallMessageHandler(previous)


def run_app(video: str | None) -> int:
    configure_threads()
    app = _create_application()
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    apply_style(app)
    window = create_window()
    window.show()
    QTimer.singleShot(0, lambda: start(window, video))
    return end_process(app.exec())


def end_process(code: int) -> int:
    """`code`, or the process ends here if a worker thread is still inside a model call.

    The window has closed: projects, autosave and settings are written (atomically) by
    then. Letting the interpreter exit would wait for the model call to end, or abort if
    Qt destroyed the running thread, so the process ends at once instead (a spill folder
    this skips is swept by the next start)."""
    if not running_worker_threads():
        return code
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
