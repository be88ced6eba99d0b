"""Render a screenshot of the main window to PNG: a generated video, two objects, propagated.

    python scripts/screenshot.py [--out resources/screenshot.png] [--image-size 256]

Runs offscreen (or under Xvfb with QT_QPA_PLATFORM=xcb). The engine is the real one with a
random-init SAM 2.1 tiny model at a reduced image size, since no weights ship with the
repository: the masks come from real clicks, a box and propagation through our model, so
with random weights their shapes are arbitrary. Pass --checkpoint to use real weights.
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

import av  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui.document.commands import EditObjectCommand, add_point, set_box  # noqa: E402
from app.gui.settings import AppSettings  # noqa: E402
from app.gui.window.main_window import MainWindow  # noqa: E402
from app.gui.window.styles import apply_style  # noqa: E402
from app.gui.worker.engine import random_model_loader, real_engine  # noqa: E402
from app.project.autosave import Autosaver  # noqa: E402

W, H, FRAMES, FPS = 480, 270, 36, 24


def scene(i: int) -> np.ndarray:
    """A soft gradient backdrop with a ball bouncing left to right and a drifting crate."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    channels = [60 + 50 * xx / W, 90 + 60 * yy / H, 120 + 40 * (1 - xx / W)]
    frame = np.stack(channels, axis=-1).astype(np.uint8)
    frame[200:, :] = (70, 110, 60)  # grass
    cx, cy = 60 + 7 * i, 150 - 60 * abs(np.sin(i / 6))
    ball = (xx - cx) ** 2 + (yy - cy) ** 2 <= 26**2
    frame[ball] = (235, 120, 40)
    x0 = int(360 - 2 * i)
    frame[150:210, x0 : x0 + 70] = (150, 105, 60)
    frame[150:154, x0 : x0 + 70] = (100, 70, 40)
    return frame


def write_video(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = 2_000_000
        for i in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(scene(i), format="rgb24")))
        container.mux(stream.encode())


def wait_for(signal, timeout_ms: int = 600_000) -> list:
    """Run the event loop until `signal` fires; returns its arguments."""
    loop, got = QEventLoop(), []
    signal.connect(lambda *args: (got.extend(args), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    if not got and signal is not None:
        raise TimeoutError("timed out waiting for the app")
    return got


def annotate(window: MainWindow) -> None:
    doc, undo = window.document, window.undo_stack
    ball = window.new_object()
    undo.push(EditObjectCommand(doc, ball, "name", name="ball", category="sports"))
    undo.push(add_point(doc, 0, ball, 60, 150, 1))
    wait_for(window.client.mask_ready)
    crate = window.new_object()
    undo.push(EditObjectCommand(doc, crate, "name", name="crate", category="object"))
    undo.push(set_box(doc, 0, crate, (358, 148, 432, 212)))
    wait_for(window.client.mask_ready)
    window.propagate("forward")
    wait_for(window.client.propagation_finished)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "resources" / "screenshot.png"))
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--checkpoint", help="real SAM 2 weights instead of a random init")
    parser.add_argument("--frame", type=int, default=0, help="frame shown in the screenshot")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    apply_style(app)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo.mp4"
        write_video(video)
        settings = AppSettings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        loader = None if args.checkpoint else random_model_loader(image_size=args.image_size)
        window = MainWindow(
            engine=real_engine(loader),
            settings=settings,
            autosaver=Autosaver(root=Path(tmp) / "recovery"),
        )
        window.confirm_discard = lambda: True
        window.resize(1280, 800)
        window.show()
        window.load_model(args.checkpoint or "random-init", "cpu")
        window.open_video(str(video))
        wait_for(window.session.session_ready)
        annotate(window)
        window.document.set_current_frame(args.frame)
        window.document.set_active_object(window.document.objects()[0].obj_id)
        # The worker saves its engine state after a pass; the badge says so until it is done.
        deadline = time.monotonic() + 30
        while window.canvas.is_busy() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(5):
            app.processEvents()
        image = window.grab().toImage()
        window.close()
    save_small_png(image, Path(args.out))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
    return 0


def save_small_png(image, out: Path) -> None:
    """Save as PNG; fall back to a dithered palette image if it would exceed 300 KB."""
    from PIL import Image

    image = image.convertToFormat(image.Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    rgb = data[:, : 3 * w].reshape(h, w, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(rgb)
    picture.save(out, optimize=True)
    if out.stat().st_size > 300_000:
        picture.quantize(colors=256, dither=Image.Dither.FLOYDSTEINBERG).save(out, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
