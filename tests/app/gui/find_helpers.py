"""Fixtures for the Find tests: a window with a finder whose proposals are pinned.

`ScriptedFinder` answers every find with the same rectangles and scores (so counts under a
threshold are known), recording each call; it is built by `random_finder_loader()`'s
real small finder, whose parameters it reports (the worker reads the finder's device
from them). `slow=True` makes it run until cancelled, polling `cancel` as SAM 3's does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from conftest import make_window
from fake_engine import fake_engine
from PySide6.QtCore import Qt

from app.gui.worker.engine import random_finder_loader

# (x0, y0, x1, y1, score) on the 160 x 120 test video: three over 0.5, one under.
RECTS = (
    (10, 8, 40, 30, 0.9),
    (60, 8, 90, 30, 0.8),
    (110, 70, 140, 100, 0.7),
    (20, 80, 50, 110, 0.3),
)


@dataclass
class Found:
    masks: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor


class ScriptedFinder:
    def __init__(self, inner, *, slow: bool = False) -> None:
        self.inner, self.slow = inner, slow
        self.calls: list[dict] = []

    def parameters(self):
        return self.inner.parameters()

    def find(
        self, frame, phrase=None, boxes=None, box_labels=None, threshold=0.5, cancel=None, **kw
    ):
        call = {"phrase": phrase, "boxes": boxes, "labels": box_labels, "threshold": threshold}
        self.calls.append({**call, "thread": threading.get_ident(), "cancel": cancel, **kw})
        while self.slow and cancel is not None and not cancel.is_set():
            time.sleep(0.01)
        if self.slow:
            raise RuntimeError("FindCancelled")
        h, w = frame.shape[:2]
        kept = [r for r in RECTS if r[4] > threshold]
        masks = torch.zeros(len(kept), h, w, dtype=torch.bool)
        for i, (x0, y0, x1, y1, _s) in enumerate(kept):
            masks[i, y0:y1, x0:x1] = True
        boxes_out = torch.tensor([r[:4] for r in kept], dtype=torch.float32).reshape(-1, 4)
        return Found(masks, boxes_out, torch.tensor([r[4] for r in kept]))


def finder_engine(made: list, *, slow: bool = False, scripted: bool = True):
    real = random_finder_loader()

    def load(path: str, device: str):
        finder = real(path, device)
        made.append(ScriptedFinder(finder, slow=slow) if scripted else finder)
        return made[-1]

    return replace(fake_engine(), load_finder=load)


def open_with_finder(qtbot, settings, recovery_root, video_path, made, **kw):
    """The window with the test video open and the finder loaded."""
    w = make_window(qtbot, settings, recovery_root, engine=finder_engine(made, **kw))
    with qtbot.waitSignal(w.session.session_ready, timeout=10000):
        assert w.open_video(str(video_path))
    with qtbot.waitSignal(w.client.finder_loaded, timeout=20000):
        w.client.load_finder("sam3.pt", "cpu")
    return w


def find_phrase(qtbot, window, phrase: str) -> None:
    """Ctrl+F, type `phrase`, Enter; wait for the proposals."""
    qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = window.find_controller.bar
    assert bar.isVisible() and bar.phrase.hasFocus()
    bar.phrase.clear()
    qtbot.keyClicks(bar.phrase, phrase)
    with qtbot.waitSignal(window.client.find_ready, timeout=20000):
        qtbot.keyClick(bar.phrase, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.find_controller.is_finding, timeout=5000)


def finding_window(qtbot, settings, recovery_root, video_path):
    """The `finding` fixture's body: the window open with a scripted finder loaded."""
    made: list = []
    w = open_with_finder(qtbot, settings, recovery_root, video_path, made)
    w.finder_calls = made
    yield w
    qtbot.waitUntil(lambda: not w.client.is_busy, timeout=10000)
    w.close()


def rows(window) -> list[str]:
    lst = window.find_controller.list
    return [lst.row_widget(i).label.text() for i in range(lst.rows.count())]


def names(window) -> list[str]:
    return [o.name for o in window.document.objects()]


def centre(rect) -> tuple[float, float]:
    return (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2


def np_rect_mask(rect, size=(120, 160)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[rect[1] : rect[3], rect[0] : rect[2]] = True
    return mask
