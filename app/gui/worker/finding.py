"""The worker's Find: SAM 3's finder on one frame, its proposals cropped for the GUI.

The finder runs once per request with a low floor (`FIND_FLOOR`), and the best
`MAX_PROPOSALS` over it go back: the Find bar's threshold then shows more or fewer of them
without running the model again. Masks go back cropped to their bounding boxes, so what
crosses to the GUI stays small whatever the frame's size.

The finder caches a frame's features by a hash of its pixels (~10 ms for 1080p): a key
such as the frame's index would find another video's features after a new one is opened.

Precision follows Model > Precision as the tracker's does (`describe_precision`): where
"auto" resolves to bf16, the finder runs "fast". A cancel (the GUI's Esc) reaches the
finder as its `cancel=` argument where `find` takes one (polled within a second, raising
`FindCancelled`); before and after the model call it is checked here too, so a Find
cancelled while queued never runs and one cancelled during the call is never shown.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.gui.worker.engine import FrameSource, describe_precision
from app.gui.worker.jobs import Find, FindResult, FoundMask
from model.engine.find_association import bounding_box

# The lowest score sent to the GUI, and how many at most (best first).
FIND_FLOOR = 0.05
MAX_PROPOSALS = 50
NO_FINDER = "Choose a finder first: Model > Choose Model…"
NO_VIDEO = "Open a video before finding objects"
# The phrase as the busy badge names it, at most this many characters.
_SHOWN_PHRASE = 40


def find_action(request: Find) -> str:
    """What the worker is doing, for the busy badge: "finding 'bicycle'"."""
    if request.phrase is None:
        return "finding objects like the boxes"
    phrase = "".join(c if c.isprintable() else " " for c in request.phrase).strip()
    if len(phrase) > _SHOWN_PHRASE:
        phrase = phrase[: _SHOWN_PHRASE - 1] + "…"
    return f"finding '{phrase}'"


def finder_precision(choice: str, device: str) -> str:
    """The finder's precision ("exact" or "fast") for the Model > Precision `choice`."""
    dtype, _reason = describe_precision(choice, device)
    return "fast" if dtype == "bf16" else "exact"


def finder_in_precision(finder: Any, choice: str, reload: Callable[[], Any]) -> Any:
    """`finder` with its weights held for the Model > Precision `choice` (as
    `finder_precision` resolves it): fast holds the large ones in bf16
    (half the memory, 1.7 GB at the released size, and the benchmark's speed: bf16 weights
    are not cast again at every product); exact after fast reloads the finder with
    `reload`, since weights rounded to bf16 cannot be made float32 again. Finders that
    cannot change how they hold their weights (test fakes) are used as they are."""
    import torch

    held = getattr(finder, "held_dtype", None)
    if held is None or not hasattr(finder, "hold_in"):
        return finder
    precision = finder_precision(choice, finder_device(finder))
    if precision == "fast" and held == torch.float32:
        return finder.hold_in(torch.bfloat16)
    if precision == "exact" and held != torch.float32:
        return reload()
    return finder


def finder_device(finder: Any) -> str:
    parameter = next(iter(finder.parameters()), None)
    return "cpu" if parameter is None else parameter.device.type


def run_find(
    finder: Any, source: FrameSource | None, request: Find, precision_choice: str
) -> FindResult:
    """Run `request` on `finder`; a one-line `error` for what the user can fix."""
    start = time.perf_counter()
    if finder is None:
        return _empty(request, error=NO_FINDER)
    if source is None:
        return _empty(request, error=NO_VIDEO)
    if request.cancel.is_set():
        return _empty(request, cancelled=True)
    frame = np.asarray(source[request.frame])
    precision = finder_precision(precision_choice, finder_device(finder))
    extra = {"cancel": request.cancel} if takes_cancel(finder) else {}
    try:
        found = finder.find(
            frame,
            request.phrase,
            request.boxes,
            request.box_labels,
            threshold=FIND_FLOOR,
            precision=precision,
            max_instances=MAX_PROPOSALS,
            **extra,
        )
    except ValueError as exc:  # the finder's one-line answer to bad boxes or phrase
        return _empty(request, error=str(exc).splitlines()[0] if str(exc) else "bad input")
    except Exception:
        if request.cancel.is_set():  # FindCancelled, or whatever the cancel interrupted
            return _empty(request, cancelled=True)
        raise
    if request.cancel.is_set():
        return _empty(request, cancelled=True)
    return _proposals(request, found, time.perf_counter() - start)


def takes_cancel(finder: Any) -> bool:
    """Whether `finder.find` takes `cancel=` (SAM 3's does; test doubles may not)."""
    try:
        return "cancel" in inspect.signature(finder.find).parameters
    except (TypeError, ValueError):
        return False


def _proposals(request: Find, found: Any, seconds: float) -> FindResult:
    count = min(int(found.scores.shape[0]), MAX_PROPOSALS)
    scores = found.scores[:count].float().cpu().numpy().astype(np.float32)
    boxes = found.boxes[:count].float().cpu().numpy().astype(np.float32).reshape(-1, 4)
    masks = tuple(crop_mask(found.masks[i].cpu().numpy()) for i in range(count))
    return FindResult(
        request.request_id,
        request.frame,
        request.phrase,
        request.boxes,
        request.box_labels,
        scores,
        boxes,
        masks,
        seconds=seconds,
        truncated=bool(getattr(found, "truncated", False)),
    )


def crop_mask(mask: np.ndarray) -> FoundMask:
    """`mask` (H, W) bool cropped to its set pixels (an empty mask: a 0 x 0 crop at 0, 0)."""
    box = bounding_box(mask)
    if box is None:
        return FoundMask(0, 0, np.zeros((0, 0), dtype=bool))
    y0, y1, x0, x1 = box
    return FoundMask(x0, y0, np.array(mask[y0:y1, x0:x1], dtype=bool, copy=True))


def _empty(request: Find, *, error: str = "", cancelled: bool = False) -> FindResult:
    return FindResult(
        request.request_id,
        request.frame,
        request.phrase,
        request.boxes,
        request.box_labels,
        np.zeros(0, np.float32),
        np.zeros((0, 4), np.float32),
        (),
        cancelled=cancelled,
        error=error,
    )
