"""The worker's side of prompting during a propagation: edits taken from the request queue.

The client appends every request to `PendingBook.queue` in the order it sends them, and
the worker's queued slot takes them from its head. While a propagation runs, the slot is
blocked, so `RequestInbox` takes the edits at the head of the queue between two frames
(`model.engine.live_pass.LivePass` applies them): prompt changes and removed objects.
Focus changes are applied at once (they only steer idle encoding). Anything else at the
head (a new propagation, a model or a video to open) is a barrier: it runs after the
pass, and edits sent after it wait behind it, so the order the user acted in is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from app.gui.worker.jobs import Focus, PendingBook, RemoveObject, SaveState, SetPrompts

EDITS = (SetPrompts, RemoveObject)
# Requests edits may overtake: saving the engine state (autosave asks for it at any time)
# reads the session and changes nothing, so running it after later edits loses no order.
OVERTAKEN = (SaveState,)


class RequestInbox:
    """`EditInbox` over the shared request queue; used on the worker thread only."""

    def __init__(
        self,
        pending: PendingBook,
        *,
        run: Callable[[Any], None],
        skip: Callable[[Any], None],
        superseded: Callable[[PendingBook, Any], bool],
    ) -> None:
        self._pending = pending
        self._run = run  # handles a request and reports it done
        self._skip = skip  # reports a request done without handling it
        self._superseded = superseded

    def take_edits(self) -> list[Callable[[], object]]:
        edits: list[Callable[[], object]] = []
        while (taken := self._pop_head()) is not None:
            request, superseded = taken
            if superseded:
                self._skip(request)
            elif isinstance(request, Focus):
                self._run(request)
            else:
                edits.append(partial(self._run, request))
        return edits

    def must_yield(self) -> bool:
        with self._pending.lock:
            index = self._first_unskippable()
            return index is not None and not isinstance(self._pending.queue[index], (*EDITS, Focus))

    def _pop_head(self) -> tuple[Any, bool] | None:
        with self._pending.lock:
            index = self._first_unskippable()
            queue = self._pending.queue
            if index is None or not isinstance(queue[index], (*EDITS, Focus)):
                return None
            request = queue[index]
            # The worker's queued call for it finds another head and returns.
            del queue[index]
            self._pending.count -= 1
            return request, self._superseded(self._pending, request)

    def _first_unskippable(self) -> int | None:
        """Index of the first request that edits may not overtake; call with the lock held."""
        for index, request in enumerate(self._pending.queue):
            if not isinstance(request, OVERTAKEN):
                return index
        return None
