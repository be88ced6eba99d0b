"""Time Find through the real window and worker against the finder called directly.

    python scripts/bench_find_app.py [--small] [--width 1280 --height 720]

A street-like generated video is opened in the real main window (a random-init SAM 2.1
tracker, a random-init SAM 3 finder: released size, 1008 px input, or `--small`'s 168 px
one for a quick run). In the app's default precision (Model > Precision "auto", resolved
as the worker does), it measures:

- Enter in the Find bar to the proposals drawn, for a first phrase (the frame's features
  computed) and a second phrase on the same frame (features cached);
- `finder.find` called directly on the same frame, in the same process, on a fresh finder
  of the same weights: the goals are the app within 1.3x of it, and the second phrase
  within a tenth of the first;
- the GUI's longest event-loop stall while the app finds (a 10 ms QTimer's largest gap
  between ticks): the goal is under 100 ms.

Random weights make the proposals arbitrary; the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from model.kernels.threads import configure_threads, prepare_environment  # noqa: E402

# As the app: passive OpenMP waiting (set before torch loads), threads = usable cores.
prepare_environment()

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui.settings import AppSettings  # noqa: E402
from app.gui.window.main_window import MainWindow  # noqa: E402
from app.gui.worker.engine import (  # noqa: E402
    random_finder_loader,
    random_model_loader,
    real_engine,
)
from app.gui.worker.finding import FIND_FLOOR, MAX_PROPOSALS, finder_precision  # noqa: E402
from app.project.autosave import Autosaver  # noqa: E402
from app.video import open_video  # noqa: E402

FRAMES, FPS = 4, 10
PHRASES = ("car", "person")


def street(i: int, width: int, height: int) -> np.ndarray:
    """A street: sky, buildings with windows, a road with lane marks, cars and people."""
    s = width / 1280
    frame = np.zeros((height, width, 3), np.uint8)
    horizon, road = int(0.45 * height), int(0.62 * height)
    sky = np.linspace(200, 140, horizon, dtype=np.float32)[:, None]
    frame[:horizon] = np.stack([sky * 0.6, sky * 0.8, sky], -1).astype(np.uint8)
    for k, x in enumerate(range(0, width, int(170 * s))):
        top = int(horizon * (0.25 + 0.3 * ((k * 37) % 5) / 5))
        shade = 90 + (k * 29) % 60
        cv2.rectangle(
            frame, (x, top), (x + int(160 * s), road), (shade, shade - 10, shade - 25), -1
        )
        for wy in range(top + int(15 * s), road - int(20 * s), int(32 * s)):
            for wx in range(x + int(12 * s), x + int(140 * s), int(36 * s)):
                cv2.rectangle(
                    frame, (wx, wy), (wx + int(18 * s), wy + int(18 * s)), (210, 200, 120), -1
                )
    frame[road:] = (72, 72, 76)
    for x in range(0, width, int(120 * s)):
        y = int(0.8 * height)
        cv2.rectangle(frame, (x, y), (x + int(60 * s), y + max(int(6 * s), 2)), (230, 230, 230), -1)
    cars = (
        (80, (200, 40, 40)),
        (420, (40, 90, 200)),
        (800, (230, 200, 60)),
        (1080, (240, 240, 240)),
    )
    for k, (x0, color) in enumerate(cars):
        x = int((x0 + 9 * i * (1 if k % 2 else -1)) * s) % width
        y = int(0.68 * height) + int(40 * s) * (k % 2)
        cv2.rectangle(frame, (x, y), (x + int(170 * s), y + int(55 * s)), color, -1)
        cv2.rectangle(frame, (x + int(30 * s), y - int(35 * s)), (x + int(130 * s), y), color, -1)
        cv2.rectangle(
            frame,
            (x + int(40 * s), y - int(28 * s)),
            (x + int(120 * s), y - int(4 * s)),
            (150, 190, 210),
            -1,
        )
        for wx in (x + int(35 * s), x + int(135 * s)):
            cv2.circle(frame, (wx, y + int(55 * s)), int(18 * s), (25, 25, 25), -1)
    for k, x0 in enumerate((300, 650, 980)):
        x, y = int((x0 + 3 * i) * s), int(0.6 * height)
        cv2.circle(frame, (x, y - int(70 * s)), int(12 * s), (190, 150, 120), -1)
        cv2.rectangle(
            frame,
            (x - int(14 * s), y - int(58 * s)),
            (x + int(14 * s), y),
            ((k * 80) % 255, 60, 120),
            -1,
        )
        cv2.rectangle(
            frame, (x - int(12 * s), y), (x + int(12 * s), y + int(45 * s)), (40, 40, 70), -1
        )
    return frame


def write_street(path: Path, width: int, height: int, frames: int = FRAMES) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for i in range(frames):
            image = street(i, width, height)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def wait_for(signal, timeout_ms: int = 1_800_000) -> list:
    loop, got = QEventLoop(), []
    signal.connect(lambda *args: (got.extend(args), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    if not got:
        raise TimeoutError("timed out waiting for the app")
    return got


class StallMeter:
    """The longest gap between ticks of a 10 ms timer: how long the GUI could not repaint."""

    def __init__(self) -> None:
        self._timer, self._clock = QTimer(), QElapsedTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self.longest_ms = 0.0

    def start(self) -> None:
        self.longest_ms = 0.0
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        self.longest_ms = max(self.longest_ms, float(self._clock.restart()))


def app_find(window: MainWindow, phrase: str, meter: StallMeter) -> float:
    """Seconds from Enter in the Find bar to the proposals drawn on the canvas."""
    bar = window.find_controller.bar
    bar.phrase.setFocus()
    bar.phrase.setText(phrase)
    loop = QEventLoop()
    drawn: list[float] = []

    def on_ready(_result) -> None:  # runs after the controller has drawn the proposals
        window.canvas.viewport().repaint()
        drawn.append(time.perf_counter())
        loop.quit()

    window.client.find_ready.connect(on_ready)
    meter.start()
    start = time.perf_counter()
    QTest.keyClick(bar.phrase, Qt.Key.Key_Return)
    if not drawn:
        loop.exec()
    meter.stop()
    window.client.find_ready.disconnect(on_ready)
    if window.find_controller.review is None:
        raise RuntimeError(f"the app found nothing for {phrase!r}: {bar.message.text()}")
    return drawn[0] - start


def direct_find(config, frames: list[np.ndarray], precision: str) -> list[list[float]]:
    """Per frame, seconds of `finder.find` for each phrase, on a fresh finder."""
    finder = random_finder_loader(config)("random-init", "cpu")
    if precision == "fast":
        finder.hold_in(torch.bfloat16)  # as the app's worker holds it (finder_in_precision)
    times = []
    for frame in frames:
        row = []
        for phrase in PHRASES:
            start = time.perf_counter()
            finder.find(
                frame,
                phrase,
                threshold=FIND_FLOOR,
                precision=precision,
                max_instances=MAX_PROPOSALS,
            )
            row.append(time.perf_counter() - start)
        times.append(row)
    return times


def open_window(tmp: Path, video: Path, config) -> MainWindow:
    settings = AppSettings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    engine = real_engine(random_model_loader(image_size=256), random_finder_loader(config))
    window = MainWindow(engine=engine, settings=settings, autosaver=Autosaver(root=tmp / "rec"))
    window.confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.load_model("random-init", "cpu")
    window.open_video(str(video))
    wait_for(window.session.session_ready)
    window.client.load_finder("random-init", "cpu")
    wait_for(window.client.finder_loaded)
    window.find_controller.open_bar()
    return window


def settle(app: QApplication, window: MainWindow) -> None:
    """Wait until the worker has encoded every frame ahead (idle work it does after each
    request), so that each find runs alone; a find sent during it waits for one frame."""
    session = window.client._worker._session  # a benchmark may look inside
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        app.processEvents()
        if session is not None and all(session.is_encoded(f) for f in range(FRAMES)):
            break
        time.sleep(0.02)
    for _ in range(10):
        app.processEvents()


def run_app(app: QApplication, window: MainWindow, frames: int) -> tuple[list, list]:
    """Per frame, the app's seconds and longest GUI stall for each phrase."""
    meter = StallMeter()
    times, stalls = [], []
    for k in range(frames):
        window.document.set_current_frame(k)
        settle(app, window)
        row, row_stalls = [], []
        for phrase in PHRASES:
            row.append(app_find(window, phrase, meter))
            row_stalls.append(meter.longest_ms)
            settle(app, window)
        times.append(row)
        stalls.append(row_stalls)
    return times, stalls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the 168 px test finder")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=3, help="frames found on (medians)")
    args = parser.parse_args(argv)
    from model.sam3.finder import FinderConfig, small_finder_config

    config = small_finder_config() if args.small else FinderConfig()
    frames = max(1, min(args.frames, FRAMES))
    configure_threads()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = tmp / "street.mp4"
        write_street(video, args.width, args.height)
        window = open_window(tmp, video, config)
        app_times, stalls = run_app(app, window, frames)
        window.close()
        reader = open_video(str(video))  # the frames the worker read
        images = [np.asarray(reader[k]) for k in range(frames)]
    precision = finder_precision("auto", "cpu")
    direct = direct_find(config, images, precision)
    size = "small (168 px)" if args.small else f"released ({config.vit.img_size} px)"
    print(
        f"finder {size}, frame {args.width}x{args.height}, precision {precision}, {frames} frames"
    )
    med = {
        name: np.median(np.array(t), axis=0) for name, t in (("app", app_times), ("direct", direct))
    }
    for k, phrase in enumerate(PHRASES):
        print(
            f"  {phrase!r:10} app {med['app'][k]:.3f} s  direct {med['direct'][k]:.3f} s  "
            f"ratio {med['app'][k] / med['direct'][k]:.2f}  "
            f"longest GUI stall {max(row[k] for row in stalls):.0f} ms"
        )
    print(
        f"second phrase / first: app {med['app'][1] / med['app'][0]:.3f}, "
        f"direct {med['direct'][1] / med['direct'][0]:.3f}"
        "  (goals: ratio <= 1.3, second <= 0.1, stall < 100 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
