"""Time a brush stroke on a 4K frame: milliseconds per mouse event, with and without repaint.

    python scripts/bench_brush.py [--events 50] [--radius 20] [--width 3840 --height 2160]

Drives the real canvas and canvas controller offscreen with QTest mouse events over a frame
holding two objects' masks. "handler" is the mouse event alone (paint the mask, rebuild the
overlay's dirty rectangle); "with repaint" also forces the viewport to paint that rectangle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QUndoStack  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui.canvas.brush import Tool  # noqa: E402
from app.gui.canvas.controller import CanvasController  # noqa: E402
from app.gui.canvas.frame_canvas import FrameCanvas  # noqa: E402
from app.gui.document.annotations import AnnotationDocument  # noqa: E402


def build(width: int, height: int) -> tuple[AnnotationDocument, FrameCanvas, QUndoStack]:
    doc = AnnotationDocument()
    doc.reset(video_path=None, num_frames=1, video_size=(height, width), fps=25.0)
    frame = np.full((height, width, 3), 90, np.uint8)
    canvas = FrameCanvas()
    canvas.resize(1280, 760)
    undo = QUndoStack()
    controller = CanvasController(doc, canvas, undo)
    controller.set_reader(lambda _i: frame)
    yy, xx = np.ogrid[0:height, 0:width]
    for obj_id, (cx, cy) in ((1, (width // 3, height // 2)), (2, (width // 2, height // 2))):
        doc.insert_object(doc.default_object(obj_id))
        doc.set_mask(0, obj_id, (xx - cx) ** 2 + (yy - cy) ** 2 <= (height // 4) ** 2)
    doc.set_active_object(1)
    canvas.show()
    canvas.fit_to_window()
    canvas.set_tool(Tool.BRUSH)
    canvas._controller = controller  # keep it alive with the canvas
    return doc, canvas, undo


def stroke_ms(
    canvas: FrameCanvas, events: int, width: int, height: int, repaint: bool
) -> tuple[float, list[float], float]:
    """(press ms, per-move ms, release ms) of one wavy stroke across the frame."""
    viewport = canvas.viewport()
    xs = np.linspace(width * 0.1, width * 0.9, events + 1)
    ys = height / 2 + height * 0.3 * np.sin(np.linspace(0, 3 * np.pi, events + 1))
    points = [canvas.viewport_pos(x, y) for x, y in zip(xs, ys, strict=True)]
    start = time.perf_counter()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
    press = 1000 * (time.perf_counter() - start)
    times = []
    for pos in points[1:]:
        start = time.perf_counter()
        QTest.mouseMove(viewport, pos)
        if repaint:
            viewport.repaint()
        times.append(1000 * (time.perf_counter() - start))
    start = time.perf_counter()
    QTest.mouseRelease(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1]
    )
    release = 1000 * (time.perf_counter() - start)
    return press, times, release


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--radius", type=int, default=20)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    _doc, canvas, undo = build(args.width, args.height)
    canvas.set_brush_radius(args.radius)
    for repaint in (False, True):
        # The second stroke is offset so it changes the mask again (a no-op is not pushed).
        press, times, release = stroke_ms(canvas, args.events, args.width, args.height, repaint)
        label = "with repaint" if repaint else "handler"
        print(
            f"{args.width}x{args.height}, r={args.radius}, {args.events} events, {label}: "
            f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms per event; "
            f"press {press:.0f} ms, release {release:.0f} ms"
        )
        canvas.set_brush_radius(args.radius + 7)
    print(f"undo steps: {undo.count()}")
    app.processEvents()


if __name__ == "__main__":
    main()
