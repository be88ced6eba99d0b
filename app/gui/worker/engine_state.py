"""Saving and restoring the tracking session's engine state for the worker (plain Python).

The worker owns the session, so it runs these; the GUI only sends `SaveState` /
`RestoreState` requests and shows the one-line `StateReport` that comes back. A store that
is missing, stale or damaged is never an error: the report says it was ignored, and the
project's masks are what the user sees, as without a store.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from app.gui.worker.jobs import RestoreState, SaveState, StateReport
from app.project.state_identity import checkpoint_identity, video_fingerprint

RECENT_FRAMES = 8  # frames the user visited last, kept in the store before farther ones


class EngineStateKeeper:
    """The identities and recent frames a save needs, and a restore waiting for a session."""

    def __init__(self) -> None:
        self._checkpoint = ""
        self.waiting: RestoreState | None = None  # sent before the session opened
        self._recent: deque[int] = deque(maxlen=RECENT_FRAMES)
        self._budget_reported = False

    def model_loaded(self, checkpoint: str, model: Any, variant: str) -> str:
        """The model's identity, which a saved state must match (includes the input size)."""
        size = int(getattr(model, "image_size", 0) or 0)
        self._checkpoint = checkpoint_identity(checkpoint, variant, size)
        return self._checkpoint

    def visited(self, frame: int) -> None:
        self._recent.append(frame)

    def _identity(self, session: Any, video_path: str) -> Any:
        from model.engine.state_store import StateIdentity

        video = video_fingerprint(video_path, session.num_frames, tuple(session.video_size))
        return StateIdentity(video=video, checkpoint=self._checkpoint)

    def save(self, session: Any, request: SaveState) -> StateReport | None:
        """Write the store; None where the session cannot save (a fake engine)."""
        from model.engine.state_store_budget import describe_dropped, format_bytes

        if getattr(session, "save_state", None) is None or not request.video_path:
            return None
        try:
            identity = self._identity(session, request.video_path)
            report = session.save_state(
                request.folder,
                identity,
                budget_bytes=request.budget_bytes,
                recent_frames=tuple(self._recent),
            )
        except (OSError, ValueError) as exc:
            return StateReport(request.request_id, "ignored", f"Engine state not saved: {exc}")
        size = f"{format_bytes(report.bytes)} of {format_bytes(report.budget)}"
        if report.dropped and not self._budget_reported:
            self._budget_reported = True
            message = describe_dropped(report.dropped, report.budget)
        elif request.explicit:
            message = f"Engine state saved beside the project: {size}"
        else:
            message = ""
        return StateReport(request.request_id, "saved", message, report.bytes, report.dropped)

    def restore(self, session: Any, request: RestoreState) -> StateReport | None:
        """Continue from the store if it is valid; a one-line report either way."""
        from model.engine.state_store import StateStoreError
        from model.engine.state_store_budget import format_bytes

        if getattr(session, "restore_state", None) is None:
            return None
        try:
            identity = self._identity(session, request.video_path)
            report = session.restore_state(
                request.folder, identity, expected_prompts=set(request.prompts)
            )
        except (StateStoreError, OSError, ValueError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = f"Saved engine state ignored ({text}); tracking starts from the keyframes"
            return StateReport(request.request_id, "ignored", message)
        message = (
            f"Resumed the engine state of {report.objects} objects ({format_bytes(report.bytes)})"
        )
        if report.retrack:
            message += f"; {report.retrack} frames will be re-tracked"
        return StateReport(request.request_id, "restored", message, report.bytes, report.retrack)
