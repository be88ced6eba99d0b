"""Cancelling a find part-way: `FindCancelled`, raised at the next poll once asked.

A full-size find is half a minute to a minute of CPU; a person who changes their mind
(another frame, another phrase) should not wait for it. `Sam3Finder.find(..., cancel=event)`
runs under `cancellable(event)`, and the long parts call `poll()` between their steps:
between the ViT's blocks and inside each block after its qkv projection and between its
attention and its MLP (a global block costs about 1.4 s exact on a 2-core CPU, most of it
the attention over 5,184 tokens, about 150 GFLOP), between the neck's convolutions, the
text encoder's layers, the fusion encoder's, the decoder's and the pixel decoder's stages,
and between the masks resized to the frame. So a cancel takes effect within the longest of
those steps (a global block's attention: under a second at the released size on a quiet
2-core CPU; `scripts/bench_sam3_find.py` measures it).

The event is held in a context variable, not on the model: a find in another thread is
not cancelled by this one's event, and code that polls outside any `cancellable` block
(the components called directly, in tests) pays one lookup and never raises.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol


class FindCancelled(Exception):
    """A find stopped before its end because its cancel event was set; nothing it computed
    was cached."""


class CancelEvent(Protocol):
    """What `cancel=` takes: `threading.Event` or anything with `is_set()`."""

    def is_set(self) -> bool: ...


_EVENT: contextvars.ContextVar[CancelEvent | None] = contextvars.ContextVar(
    "sam3_cancel", default=None
)


@contextlib.contextmanager
def cancellable(event: CancelEvent | None) -> Iterator[None]:
    """Within this block `poll()` raises `FindCancelled` once `event` is set (None: never).
    Raises at once where the event is already set."""
    token = _EVENT.set(event)
    try:
        poll()
        yield
    finally:
        _EVENT.reset(token)


def poll() -> None:
    """Raise `FindCancelled` if the current find's cancel event is set."""
    event = _EVENT.get()
    if event is not None and event.is_set():
        raise FindCancelled("the find was cancelled")
