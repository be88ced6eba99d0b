"""Finding new instances while propagating, on the worker thread (Track > Find New Instances
While Propagating).

Every `every` frames of a propagation (counted from the frame it started on, in either
direction, each frame once), the finder runs with the accepted phrases on the frame just
tracked, and a detection scoring over the threshold that overlaps no object tracked there
nor a detection kept before it (mask IoU at most 0.1, `model.engine.find_association`) is
new. The start frame is not searched: the user has just reviewed it (what they rejected
there must not come back by itself).

New detections go to the GUI (`FoundInPass`), not into the session: the GUI's document owns
object ids (a user's New Object during the pass must never get the same id), so the GUI
creates the objects ("PHRASE N", category the phrase, the found mask as a keyframe: one
undo step) and sends their mask prompts like any edit made during a propagation; the pass
takes them between two frames and tracks them from the frame they were found on
(`model.engine.live_pass`). Until the objects of one find have reached the session, the
next due frame is skipped, so nothing is found twice. Nothing tracked is ever replaced or
deleted.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.project.mask_codec import encode_rle
from model.engine.find_association import new_detections

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_THRESHOLD",
    "FoundInPass",
    "PassFind",
    "PassFinder",
    "pass_finder",
]

DEFAULT_EVERY = 16
DEFAULT_THRESHOLD = 0.5  # Meta's Sam3Processor confidence_threshold


@dataclass(frozen=True)
class PassFind:
    """What a propagation should find: these phrases every `every` frames, over `threshold`."""

    phrases: tuple[str, ...]
    every: int = DEFAULT_EVERY
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class FoundInPass:
    """New instances found on `frame` during propagation `request_id`, best first; `error` is
    one line when finding failed (the pass goes on without it)."""

    request_id: int
    frame: int
    phrases: tuple[str, ...] = ()  # per instance
    scores: tuple[float, ...] = ()
    masks: tuple[bytes, ...] = ()  # `encode_rle` of (H, W) bool at the video's size
    error: str = ""


class PassFinder:
    """Decides which frames of one pass to search, searches them and keeps what is new."""

    def __init__(
        self,
        finder: Any,
        spec: PassFind,
        source: Any,
        *,
        start: int,
        precision: str,
        cancel: threading.Event,
    ) -> None:
        if spec.every < 1:
            raise ValueError(f"find every must be at least 1 frame, got {spec.every}")
        self._finder, self._spec, self._source = finder, spec, source
        self._start, self._precision, self._cancel = start, precision, cancel
        self._searched: set[int] = {start}
        self._awaited: tuple[int, int] | None = None  # (frame found on, objects expected)
        self._failed = False
        self.added = 0

    def due(self, frame: int) -> bool:
        return (frame - self._start) % self._spec.every == 0 and frame not in self._searched

    def look(self, request_id: int, result: Any, object_ids: list[int]) -> FoundInPass | None:
        """Search `result`'s frame if it is due; what is new there, or None."""
        frame = result.frame
        if self._failed or not self.due(frame) or self._waiting(frame, object_ids):
            return None
        self._searched.add(frame)
        tracked = {
            o: np.asarray(r.mask, dtype=bool) for o, r in result.objects.items() if r.score > 0
        }
        try:
            found = self._find(frame)
        except Exception as exc:  # noqa: BLE001 - the propagation must go on without it
            if self._cancel.is_set():
                return None
            self._failed = True
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return FoundInPass(request_id, frame, error=f"finding stopped: {reason}")
        return self._keep_new(request_id, frame, found, tracked, len(object_ids))

    def _waiting(self, frame: int, object_ids: list[int]) -> bool:
        """True while the objects of the last find have not all reached the session (the
        GUI sends them between two frames); after two intervals they are not waited for."""
        if self._awaited is None:
            return False
        found_on, expected = self._awaited
        if len(object_ids) >= expected or abs(frame - found_on) > 2 * self._spec.every:
            self._awaited = None
            return False
        return True

    def _find(self, frame: int) -> list[tuple[str, float, np.ndarray]]:
        image = np.asarray(self._source[frame])
        extra = {"cancel": self._cancel} if _takes_cancel(self._finder) else {}
        found = []
        for phrase in self._spec.phrases:
            instances = self._finder.find(
                image,
                phrase,
                threshold=self._spec.threshold,
                frame_key=("frame", frame),
                precision=self._precision,
                **extra,
            )
            masks = instances.masks.cpu().numpy().astype(bool, copy=False)
            scores = instances.scores.float().cpu().numpy()
            found += [(phrase, float(s), m) for s, m in zip(scores, masks, strict=True)]
        found.sort(key=lambda item: -item[1])
        return found

    def _keep_new(
        self,
        request_id: int,
        frame: int,
        found: list[tuple[str, float, np.ndarray]],
        tracked: Mapping[int, np.ndarray],
        objects_now: int,
    ) -> FoundInPass | None:
        keep = new_detections([m for _, _, m in found], list(tracked.values()))
        if not keep:
            return None
        self._awaited = (frame, objects_now + len(keep))
        self.added += len(keep)
        return FoundInPass(
            request_id,
            frame,
            tuple(found[i][0] for i in keep),
            tuple(found[i][1] for i in keep),
            tuple(encode_rle(found[i][2]) for i in keep),
        )


def pass_finder(
    finder: Any,
    spec: PassFind | None,
    source: Any,
    *,
    start: int,
    precision_choice: str,
    device: str,
    cancel: threading.Event,
) -> PassFinder | None:
    """The `PassFinder` of a propagation asked to find `spec`; None when it is not asked to
    or cannot (no finder loaded, no frames). The finder computes in the precision the
    tracker's Model > Precision choice resolves to."""
    if spec is None or finder is None or source is None:
        return None
    from app.gui.worker.engine import describe_precision

    dtype, _reason = describe_precision(precision_choice, device)
    precision = "fast" if dtype == "bf16" else "exact"
    return PassFinder(finder, spec, source, start=start, precision=precision, cancel=cancel)


def _takes_cancel(finder: Any) -> bool:
    try:
        return "cancel" in inspect.signature(finder.find).parameters
    except (TypeError, ValueError):
        return False
