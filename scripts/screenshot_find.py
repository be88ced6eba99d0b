"""Screenshots of finding objects: the Find bar, proposals outlined and listed, exemplars.

    DISPLAY=:N QT_QPA_PLATFORM=xcb python scripts/screenshot_find.py --out-dir DIR

Opens a generated street video (scripts/bench_find_app.py) in the real window with a
random-init SAM 2.1 tracker and a random-init small SAM 3 finder, finds "car", pins the
threshold under the fifth-best score so that three proposals show (random weights make them
arbitrary), accepts one by a click, then draws a find-similar box and a negative one.
Each step is saved as DIR/find-*.png from the X display (ImageMagick's `import`), or with
`window.grab()` when no display is named.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from bench_find_app import open_window, settle, wait_for, write_street  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui.window.styles import apply_style  # noqa: E402

SHOWN = 3


def pump(app: QApplication, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def snap(app: QApplication, window, out: Path) -> None:
    pump(app)
    display = os.environ.get("DISPLAY")
    if display and os.environ.get("QT_QPA_PLATFORM") == "xcb":
        subprocess.run(["import", "-display", display, "-window", "root", str(out)], check=True)
    else:
        window.grab().save(str(out))
    print(f"wrote {out}")


def drag(window, box, button) -> None:
    viewport = window.canvas.viewport()
    a, b = window.canvas.viewport_pos(*box[:2]), window.canvas.viewport_pos(*box[2:])
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(viewport, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="shots")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from model.sam3.finder import small_finder_config

    app = QApplication.instance() or QApplication([])
    apply_style(app)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = tmp / "street.mp4"
        write_street(video, 1280, 720)
        window = open_window(tmp, video, small_finder_config())
        window.resize(1500, 940)
        settle(app, window)
        find = window.find_controller
        find.bar.phrase.setText("car")
        find.find()
        wait_for(window.client.find_ready)
        scores = sorted((p.score for p in find.review.pending), reverse=True)
        find.bar.set_threshold(max(scores[min(SHOWN, len(scores)) - 1] - 0.01, 0.05))
        snap(app, window, out / "find-proposals.png")
        best = find.shown_proposals()[0].proposal
        ys, xs = np.nonzero(best.mask.crop)  # a pixel of the mask, to click on
        x, y = best.mask.x0 + xs[len(xs) // 2] + 0.5, best.mask.y0 + ys[len(ys) // 2] + 0.5
        viewport = window.canvas.viewport()
        QTest.mouseClick(
            viewport,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            window.canvas.viewport_pos(x, y),
        )
        snap(app, window, out / "find-accepted-one.png")
        window.actions.find_similar_tool.trigger()  # S (no window manager gives focus here)
        drag(window, (410, 480, 600, 600), Qt.MouseButton.LeftButton)
        wait_for(window.client.find_ready)
        drag(window, (280, 340, 320, 480), Qt.MouseButton.RightButton)
        wait_for(window.client.find_ready)
        snap(app, window, out / "find-similar.png")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
