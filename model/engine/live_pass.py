"""A propagation the user can edit while it runs, with results equal to an idle sequence.

Prompts, cleared prompts and removed objects may arrive while a pass runs. A running
engine pass must not see them: it planned its frames and memories when it started, and a
prompted frame's memory is only encoded when a pass starts. So between two frames, when
edits have arrived, `LivePass` closes the engine pass (the first unfinished frame is
marked for the next local pass), applies the edits in their order, and goes on with a
new local pass in the same direction. That is exactly "cancel, edit, propagate again"
done while idle, so the masks are bit-identical to that sequence:

- an edit ahead of the pass becomes a keyframe before the pass reaches it;
- an edit behind the pass is an edited frame of the new local pass, which recomputes from
  it up to its next keyframe, then carries on where the closed pass stopped.

When the last phase ends and edits have left local work in the pass's directions (an
edit during the backward half of "both" marks the forward direction too), the next local
pass starts by itself. After a cancel, edits still waiting are applied at once and a
local pass covers them alone; the rest of the cancelled work stays marked for later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the GUI imports this module; torch loads only with the model
    from model.engine.prompts import FrameResult

Edit = Callable[[], object]

_PHASES = {"forward": ("forward",), "backward": ("backward",), "both": ("forward", "backward")}


class EditInbox(Protocol):
    """Where edits sent during a pass wait; filled by another thread."""

    def take_edits(self) -> list[Edit]:
        """The edits that arrived since the last call, oldest first (each applies itself)."""
        ...

    def must_yield(self) -> bool:
        """True when a request that has to run after this pass is waiting (no follow-up)."""
        ...


class LivePass:
    """One propagation request: engine passes in `direction`, restarted around edits."""

    def __init__(
        self,
        session: Any,
        start: int | None,
        direction: str,
        *,
        inbox: EditInbox,
        cancel: threading.Event,
        mode: str = "local",
    ) -> None:
        """`mode`: the first engine pass's ("full" for a fresh headless run); every pass
        after an edit is local (it recomputes from the edits and from where the last stopped)."""
        if direction not in _PHASES:
            raise ValueError(f"direction must be one of {sorted(_PHASES)}, got {direction!r}")
        self._session = session
        self._start = start
        self._direction = direction
        self._inbox = inbox
        self._cancel = cancel
        self.restarts = 0  # engine passes started after the first, for progress and tests
        self._waiting: list[Edit] = []  # taken from the inbox when a cancel came first
        self._passes = 0
        self._mode = mode

    def frames(self) -> Iterator[FrameResult]:
        """Every frame result of every engine pass, in order (a frame may come again)."""
        todo = [(d, self._start) for d in _PHASES[self._direction]]
        held: list[dict[tuple[int, bool], set[int]]] = []
        try:
            while todo:
                yield from self._run(todo)
                cancelled = self._cancel.is_set()
                if todo and not cancelled:
                    return  # no keyframe left to track from
                edits, self._waiting = [*self._waiting, *self._inbox.take_edits()], []
                if cancelled:
                    if not edits:
                        return
                    # Only the waiting edits' own work follows a cancel; the rest stays marked.
                    held.append(self._session.take_pending(self._direction))
                self._apply(edits)
                if self._inbox.must_yield():
                    return
                self._cancel.clear()
                directions = _PHASES[self._direction]
                todo = [(d, None) for d in directions if self._session.has_pending_work(d)]
                self.restarts += len(todo)
        finally:
            for marks in held:
                self._session.restore_pending(marks)

    def _run(self, todo: list[tuple[str, int | None]]) -> Generator[FrameResult, None, None]:
        """Run the phases in `todo`, popping each one done; stops early when cancelled or
        when no object has a keyframe left."""
        while todo:
            direction, start = todo[0]
            if self._passes and not self._has_keyframes():
                return  # edits removed them; the first pass reports "nothing to track" itself
            mode = self._mode if self._passes == 0 else "local"
            self._passes += 1
            engine_pass = self._session.propagate(
                start, direction, mode=mode, should_stop=self._cancel.is_set
            )
            edits: list[Edit] = []
            try:
                for result in engine_pass:
                    yield result
                    edits = self._inbox.take_edits()
                    if edits:
                        break
            finally:
                engine_pass.close()  # marks where it stopped, before any edit is applied
            if self._cancel.is_set():
                self._waiting = edits
                return
            if edits:
                self._apply(edits)
                todo[0] = (direction, None)
                self.restarts += 1
                continue
            todo.pop(0)

    def _has_keyframes(self) -> bool:
        return any(self._session.keyframes(o) for o in self._session.object_ids)

    @staticmethod
    def _apply(edits: list[Edit]) -> None:
        for edit in edits:
            edit()
