"""The canvas badge: what the worker is doing now, and the edits waiting behind it.

It used to be set from a stats message ("Encoding frame 50…") and cleared only when the
worker had no request left, so during a propagation it stayed for minutes after frame
50's mask was shown, and through later passes. Now the worker reports each job as it
starts and ends (`jobs.Activity`), and the badge is recomputed from that and from the
prompt changes sent but not yet started: a correction waiting for the frame being
computed says that it is queued.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from app.gui.canvas.frame_view import FrameView
from app.gui.worker.client import WorkerClient
from app.gui.worker.jobs import Activity

__all__ = ["BusyBadge", "activity_text"]


def activity_text(activity: Activity, *, waited_on: bool = False) -> str | None:
    """One line for what the worker is doing; None for nothing worth a badge."""
    action, frame = activity.action, activity.frame
    if not action:
        return None
    if action == "encoding":
        return f"Encoding frame {frame}…"
    if action == "segmenting":
        return f"Segmenting frame {frame}…"
    if action == "encoding ahead":
        # Done while idle, for nobody; worth naming only when an edit waits for it.
        return f"Encoding frame {frame} ahead…" if waited_on and frame is not None else None
    return f"{action[0].upper()}{action[1:]}…"


class BusyBadge(QObject):
    """Keeps `canvas`'s busy note in step with the worker's reports."""

    def __init__(self, client: WorkerClient, canvas: FrameView) -> None:
        super().__init__(canvas)
        self._canvas = canvas
        self._activity = Activity(-1, "")
        self._queued: dict[int, int] = {}  # request id -> frame, sent and not started
        client.activity_changed.connect(self._on_activity_changed)
        client.prompts_sent.connect(self._on_prompts_sent)
        client.request_finished.connect(self._on_request_finished)

    def text(self) -> str | None:
        queued = self._queued_text()
        doing = activity_text(self._activity, waited_on=queued is not None)
        lines = [line for line in (doing, queued) if line]
        return "\n".join(lines) or None

    def _queued_text(self) -> str | None:
        if not self._queued:
            return None
        frames = sorted(set(self._queued.values()))
        where = ", ".join(str(f) for f in frames[:3]) + (", …" if len(frames) > 3 else "")
        what = f"Edit on frame {where}" if len(frames) == 1 else f"Edits on frames {where}"
        if self._activity.action == "propagating":
            return f"{what} queued: applied after the frame in progress"
        return f"{what} queued"

    def _on_activity_changed(self, activity: Activity) -> None:
        self._queued.pop(activity.request_id, None)  # it has started
        self._activity = activity
        self._refresh()

    def _on_prompts_sent(self, request_id: int, frame: int) -> None:
        self._queued[request_id] = frame
        self._refresh()

    def _on_request_finished(self, request_id: int) -> None:
        if self._queued.pop(request_id, None) is not None:
            self._refresh()

    def _refresh(self) -> None:
        self._canvas.set_busy(self.text())
