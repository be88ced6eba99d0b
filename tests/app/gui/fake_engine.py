"""A fast, deterministic stand-in for the SAM 2 tracking session, for GUI logic tests.

Same interface as `model.engine.session.TrackingSession`. A prompt gives a disc around the
mean positive point (or the box centre); propagation moves each object's disc
`SPEED` pixels right per frame away from its nearest keyframe, and reports the object
absent (score < 0) once the disc centre leaves the frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from app.gui.worker.engine import Engine

RADIUS = 10
SPEED = 2


@dataclass(frozen=True)
class FakePrompt:
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None


@dataclass(frozen=True)
class ObjectResult:
    obj_id: int
    mask: np.ndarray
    score: float
    iou: float = 0.9


@dataclass(frozen=True)
class FrameResult:
    frame: int
    objects: dict[int, ObjectResult]


class FakeModelError(RuntimeError):
    pass


@dataclass
class FakeModel:
    cfg: object = field(default_factory=lambda: type("Cfg", (), {"name": "fake-tiny"})())
    image_size: int = 1024  # the size it was "loaded" at (Model > Input Size)


def disc(size: tuple[int, int], cx: float, cy: float, r: float = RADIUS) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


class FakeSession:
    def __init__(
        self,
        source,
        device: str,
        *,
        frame_delay: float = 0.0,
        fail: Callable[[str], None] | None = None,
    ) -> None:
        self.num_frames = len(source)
        self.video_size = tuple(source[0].shape[:2])
        self.device = device
        self._centres: dict[tuple[int, int], tuple[float, float]] = {}
        self._encoded: set[int] = set()
        self._delay = frame_delay
        self._fail = fail or (lambda _what: None)
        self.calls: list[tuple] = []
        self.thread_ids: set[int] = set()
        # Frames prompted since the last pass; a pass with no start begins at the first.
        self._dirty: set[int] = set()
        # Every precision the worker asked for, in order (the real session switches).
        self.precisions: list[str] = []

    def set_precision(self, requested: str) -> str:
        self.precisions.append(requested)
        return f"{requested} (fake)"

    @property
    def object_ids(self) -> list[int]:
        return sorted({o for _, o in self._centres})

    @property
    def cache_bytes_used(self) -> int:
        return 1000 * len(self._encoded)

    def is_encoded(self, frame: int) -> bool:
        return frame in self._encoded

    def encode_frame(self, frame: int) -> None:
        self.thread_ids.add(threading.get_ident())
        self._encoded.add(frame)

    def add_prompt(self, frame: int, obj_id: int, prompt: FakePrompt, *, clear_old: bool = True):
        self.thread_ids.add(threading.get_ident())
        self._fail("add_prompt")
        self.calls.append(("add_prompt", frame, obj_id))
        self._encoded.add(frame)
        if prompt.points is not None and (prompt.labels == 1).any():
            cx, cy = prompt.points[prompt.labels == 1].mean(axis=0)
        elif prompt.box is not None:
            cx, cy = (prompt.box[0] + prompt.box[2]) / 2, (prompt.box[1] + prompt.box[3]) / 2
        else:
            cx, cy = -100.0, -100.0
        self._centres[(frame, obj_id)] = (float(cx), float(cy))
        self._dirty.add(frame)
        mask = disc(self.video_size, cx, cy)
        return ObjectResult(obj_id, mask, 5.0 if mask.any() else -5.0)

    def clear_prompts(self, frame: int, obj_id: int) -> None:
        self.calls.append(("clear_prompts", frame, obj_id))
        self._centres.pop((frame, obj_id), None)
        self._dirty.add(frame)

    def remove_object(self, obj_id: int) -> None:
        self.calls.append(("remove_object", obj_id))
        self._centres = {k: v for k, v in self._centres.items() if k[1] != obj_id}

    def has_pending_work(self, direction: str) -> bool:
        return bool(self._dirty and self._centres)

    def take_pending(self, direction: str) -> set[int]:
        taken, self._dirty = self._dirty, set()
        return taken

    def restore_pending(self, taken: set[int]) -> None:
        self._dirty |= taken

    def keyframes(self, obj_id: int) -> list[int]:
        return sorted(f for f, o in self._centres if o == obj_id)

    def result(self, obj_id: int, frame: int) -> ObjectResult:
        keys = self.keyframes(obj_id)
        nearest = min(keys, key=lambda k: abs(k - frame))
        cx, cy = self._centres[(nearest, obj_id)]
        cx += SPEED * abs(frame - nearest)
        inside = 0 <= cx < self.video_size[1]
        mask = disc(self.video_size, cx, cy) if inside else np.zeros(self.video_size, bool)
        return ObjectResult(obj_id, mask, 5.0 if inside else -5.0)

    def propagate(
        self, start=None, direction="forward", *, mode="local", should_stop=None
    ) -> Iterator[FrameResult]:
        self.thread_ids.add(threading.get_ident())
        self._fail("propagate")
        self.calls.append(("propagate", start, direction))
        start = min(self._dirty, default=0) if start is None else start
        self._dirty = set()
        if direction == "forward":
            order = list(range(start, self.num_frames))
        elif direction == "backward":
            order = list(range(start, -1, -1))
        else:
            order = [*range(start, self.num_frames), *range(start - 1, -1, -1)]
        shown = 0
        try:
            for frame in order:
                if should_stop is not None and should_stop():
                    return
                if self._delay:
                    time.sleep(self._delay)
                self._encoded.add(frame)
                shown += 1
                yield FrameResult(frame, {o: self.result(o, frame) for o in self.object_ids})
        finally:
            if shown < len(order):  # like the engine: the next pass resumes here
                self._dirty.add(order[shown])


def fake_engine(
    *,
    frame_delay: float = 0.0,
    fail: Callable[[str], None] | None = None,
    sessions: list[FakeSession] | None = None,
) -> Engine:
    """An Engine whose checkpoint "bad.pt" fails to load and whose sessions are FakeSessions."""

    def load_model(checkpoint: str, device: str, image_size: int | None = None) -> FakeModel:
        if "bad" in checkpoint:
            raise FakeModelError(f"{checkpoint}: not a SAM 2 checkpoint")
        return FakeModel(image_size=image_size or 1024)

    def open_session(_model, source, device: str) -> FakeSession:
        session = FakeSession(source, device, frame_delay=frame_delay, fail=fail)
        if sessions is not None:
            sessions.append(session)
        return session

    return Engine(load_model=load_model, open_session=open_session, make_prompt=FakePrompt)


def run_until_killed(video: str, recovery_root: str, settings_file: str) -> int:
    """Subprocess entry for the kill-and-recover test: annotate, propagate slowly, report.

    Prints "frame N" per propagated frame so the test knows when to SIGKILL us.
    """
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.gui.document.commands import add_point
    from app.gui.settings import AppSettings
    from app.gui.window.main_window import MainWindow
    from app.project.autosave import Autosaver
    from app.video import open_video

    app = QApplication([])
    settings = AppSettings(QSettings(settings_file, QSettings.Format.IniFormat))
    window = MainWindow(
        engine=fake_engine(frame_delay=0.15),
        settings=settings,
        autosaver=Autosaver(root=recovery_root, mask_interval_s=0.0),
        video_opener=open_video,
    )
    window.show()
    window.load_model("fake.pt", "cpu")
    window.open_video(video)
    obj = window.new_object()
    window.undo_stack.push(add_point(window.document, 0, obj, 40.0, 50.0, 1))
    window.client.frame_ready.connect(lambda r: print(f"frame {r.frame}", flush=True))
    window.client.mask_ready.connect(lambda r: window.propagate("forward"))
    return app.exec()


if __name__ == "__main__":
    import sys

    sys.exit(run_until_killed(*sys.argv[1:4]))


@dataclass(frozen=True)
class MaskPrompt(FakePrompt):
    mask: np.ndarray | None = None


class MaskSession(FakeSession):
    """The fake session, also taking mask prompts: the mask is the result, as in SAM 2."""

    def add_prompt(self, frame, obj_id, prompt, *, clear_old=True):
        if getattr(prompt, "mask", None) is None:
            return super().add_prompt(frame, obj_id, prompt, clear_old=clear_old)
        self.calls.append(("add_mask", frame, obj_id, prompt.mask.copy()))
        ys, xs = np.nonzero(prompt.mask)
        self._centres[(frame, obj_id)] = (float(xs.mean()), float(ys.mean()))
        return ObjectResult(obj_id, prompt.mask.copy(), 5.0)
