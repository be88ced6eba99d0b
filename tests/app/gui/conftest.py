"""GUI test fixtures: a generated video, isolated settings and recovery folders, a window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from fake_engine import fake_engine
from PySide6.QtCore import QPoint, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.gui.settings import AppSettings
from app.gui.window.main_window import MainWindow
from app.gui.worker.client import running_worker_threads, wait_for_abandoned_threads
from app.models.devices import DEVICES
from app.project.autosave import Autosaver
from app.video import open_video

NUM_FRAMES = 20
WIDTH, HEIGHT = 160, 120


def square_frame(i: int) -> np.ndarray:
    """(H, W, 3) grey frame with a red 24 px square moving 3 px right per frame."""
    frame = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    x0, y0 = 20 + 3 * i, 40
    frame[y0 : y0 + 24, x0 : x0 + 24] = (220, 40, 40)
    return frame


def write_video(path: Path, num_frames: int = NUM_FRAMES, fps: int = 10) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(square_frame(i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def video_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "square.mp4")


@pytest.fixture(autouse=True)
def no_leaked_worker_threads():
    """Fail any test that leaves an inference thread running."""
    yield
    # A closed window stops its thread but does not wait for a model call in flight.
    wait_for_abandoned_threads(timeout_ms=30000)
    leaked = running_worker_threads()
    for thread in leaked:
        thread.quit()
        thread.wait(5000)
    assert not leaked, f"{len(leaked)} worker thread(s) still running after the test"


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s = AppSettings(store)
    s.checkpoint = "fake.pt"
    return s


@pytest.fixture
def all_devices(monkeypatch):
    """Every device usable, so device switching can be tested on any machine; list it
    before `window`/`opened` in a test's arguments so the menu is built with it."""
    monkeypatch.setattr("app.models.devices.device_problems", lambda: dict.fromkeys(DEVICES))


@pytest.fixture
def recovery_root(tmp_path: Path) -> Path:
    return tmp_path / "recovery"


def make_window(
    qtbot, settings: AppSettings, recovery_root: Path, *, engine=None, **engine_kw
) -> MainWindow:
    """The window on `engine` (default: `fake_engine(**engine_kw)`), shown, model loading."""
    window = MainWindow(
        engine=engine if engine is not None else fake_engine(**engine_kw),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    window.confirm_discard = lambda: True
    window.ask_recovery = lambda info: "later"
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.load_model(settings.checkpoint, "cpu")
    return window


@pytest.fixture
def window(qtbot, settings, recovery_root):
    w = make_window(qtbot, settings, recovery_root)
    yield w
    w.confirm_discard = lambda: True
    w.close()


@pytest.fixture
def opened(qtbot, window, video_path):
    """The window with the test video open and the fake session ready."""
    with qtbot.waitSignal(window.session.session_ready, timeout=10000):
        assert window.open_video(str(video_path))
    return window


def click_frame(
    window: MainWindow, x: float, y: float, button=Qt.MouseButton.LeftButton, mods=None
):
    """A real mouse click on the canvas viewport at video pixel (x, y)."""
    mods = Qt.KeyboardModifier.NoModifier if mods is None else mods
    QTest.mouseClick(window.canvas.viewport(), button, mods, window.canvas.viewport_pos(x, y))


def drag_box(window: MainWindow, x0: float, y0: float, x1: float, y1: float) -> None:
    viewport = window.canvas.viewport()
    a, b = window.canvas.viewport_pos(x0, y0), window.canvas.viewport_pos(x1, y1)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(viewport, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def when_modal(kind: type, handle: Callable[[QWidget], None]) -> None:
    """Run `handle(dialog)` once a modal `kind` is up (it blocks the test in `exec`)."""

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind):
            handle(widget)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)
