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

import itertools
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from app.gui.worker.finding import finder_precision, takes_cancel
from app.gui.worker.jobs import FoundInPass, PassFind
from app.project.mask_codec import encode_rle

if TYPE_CHECKING:  # torch loads with the model, not when the GUI starts
    from model.engine.auto_find import Found

__all__ = ["PassFinder", "pass_finder"]


class PassFinder:
    """Decides which frames of one pass to search, searches them and keeps what is new.

    `model.engine.auto_find.AutoFind` (shared with `masklet track --find`) picks the due
    frames and keeps the new detections; the mask prompts it would add are dropped here,
    since the GUI adds these objects itself under ids it allocates."""

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

        from model.engine.auto_find import AutoFind

        ids = itertools.count(1)  # AutoFind's own ids; the GUI gives the real ones
        self._auto = AutoFind(
            None, source, self._find, new_id=lambda _found: next(ids), every=spec.every, start=start
        )
        self._awaited: tuple[int, int] | None = None  # (frame found on, objects expected)
        self._failed = False

    def look(self, request_id: int, result: Any, object_ids: list[int]) -> FoundInPass | None:
        """Search `result`'s frame if it is due; what is new there, or None."""
        frame = result.frame
        if self._failed or frame == self._start or not self._auto.due(frame):
            return None
        if self._waiting(frame, object_ids):
            return None
        tracked = {
            o: np.asarray(r.mask, dtype=bool) for o, r in result.objects.items() if r.score > 0
        }
        try:
            objects = self._auto.search(frame, tracked)
        except Exception as exc:  # noqa: BLE001 - the propagation must go on without it
            if self._cancel.is_set():
                return None
            self._failed = True
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return FoundInPass(request_id, frame, error=f"finding stopped: {reason}")
        self._auto.take_edits()  # not applied: the GUI adds these objects (see above)
        if not objects:
            return None
        self._awaited = (frame, len(object_ids) + len(objects))
        return FoundInPass(
            request_id,
            frame,
            tuple(o.found.phrase for o in objects),
            tuple(o.found.score for o in objects),
            tuple(encode_rle(o.found.mask) for o in objects),
        )

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

    def _find(self, frame: int, image: np.ndarray) -> list[Found]:
        """Every phrase's instances over the threshold on `frame` (AutoFind's `find`)."""
        from model.engine.auto_find import find_phrases

        extra = {"cancel": self._cancel} if takes_cancel(self._finder) else {}
        return find_phrases(
            self._finder,
            np.asarray(image),
            self._spec.phrases,
            threshold=self._spec.threshold,
            precision=self._precision,
            **extra,
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
    precision = finder_precision(precision_choice, device)
    return PassFinder(finder, spec, source, start=start, precision=precision, cancel=cancel)
