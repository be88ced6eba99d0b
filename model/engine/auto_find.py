"""Finding new objects while a propagation runs: every N frames, the finder's new instances
become new tracked objects, keyed on the frame where they were found.

`AutoFind` watches the frames a pass yields. On a frame that is due (every `every` frames
from `start`, in either direction, each frame at most once), it runs `find(frame, image)`,
keeps the instances that overlap no object tracked on that frame and no instance kept
before them (`model.engine.find_association.new_detections`: mask IoU at most 0.1, the best
score first), gives each a new object id (`new_id`), and turns each into an edit: its mask
as a mask prompt on that frame, the path of an imported or painted mask. Nothing tracked is
replaced or deleted: a found instance only ever adds an object.

The edits reach the session the way edits made during a propagation do: `AutoFind` is the
pass's `EditInbox` (`model.engine.live_pass.LivePass`). The pass takes them after the frame
(`take_edits`), closes its engine pass, applies them and goes on from there, so the new
objects are tracked from the frame they were found on, exactly as if the pass had been
cancelled there, the masks added, and propagated again. Edits found when no pass runs (the
first frame, before anything is tracked; the last frame, once the caller stops consuming)
are applied with `apply_waiting()`.

Plain Python on top of the session; the GUI's worker and `masklet track --find` share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.engine.find_association import NEW_OBJECT_MAX_IOU, new_detections
from model.engine.prompts import FrameResult, ObjectResult, Prompt

__all__ = ["DEFAULT_EVERY", "AutoFind", "Found", "FoundObject", "find_phrases"]

# Frames between two finds during a propagation, by default.
DEFAULT_EVERY = 16

Edit = Callable[[], object]


@dataclass(frozen=True)
class Found:
    """One instance the finder returned: its (H, W) bool mask at the frame's size, its score
    and the phrase (or other label) that found it."""

    mask: np.ndarray = field(repr=False)
    score: float
    phrase: str


@dataclass(frozen=True)
class FoundObject:
    """A found instance made a new object `obj_id`, keyed on `frame`."""

    frame: int
    obj_id: int
    found: Found


def find_phrases(
    finder: Any,
    image: np.ndarray,
    phrases: Sequence[str],
    on_truncated: Callable[[str], None] | None = None,
    **find_kwargs: Any,
) -> list[Found]:
    """Every phrase's instances on `image` (SAM 3's `finder.find(image, phrase,
    **find_kwargs)`, e.g. threshold, precision, frame_key, cancel), phrase by phrase: the
    frame's features are computed once and cached for the next phrases. `on_truncated`
    hears each phrase the finder read only the first 32 tokens of."""
    found: list[Found] = []
    for phrase in phrases:
        instances = finder.find(image, phrase, **find_kwargs)
        if on_truncated is not None and getattr(instances, "truncated", False):
            on_truncated(phrase)
        masks = instances.masks.cpu().numpy().astype(bool, copy=False)
        scores = instances.scores.float().cpu().tolist()
        found += [Found(m, float(s), phrase) for m, s in zip(masks, scores, strict=True)]
    return found


FindFn = Callable[[int, np.ndarray], Sequence[Found]]
Added = Callable[[FoundObject, ObjectResult], None]


class AutoFind:
    """Finds on due frames of a pass and adds the new instances as objects.

    `session`: the `TrackingSession` (or anything with its `add_prompt`); `frames`: the
    video (`len()`, `frames[i] -> (H, W, 3) uint8 RGB`); `find(frame, image)`: the
    instances on that frame, any order; `new_id(found)`: the id of a new object;
    `on_added(obj, result)`: told once an object's mask prompt is in, with the prompt's
    result on that frame; `max_new`: at most this many objects in all (the rest are
    counted in `skipped`).
    """

    def __init__(
        self,
        session: Any,
        frames: Any,
        find: FindFn,
        *,
        new_id: Callable[[Found], int],
        every: int = DEFAULT_EVERY,
        start: int = 0,
        max_iou: float = NEW_OBJECT_MAX_IOU,
        on_added: Added | None = None,
        max_new: int | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of frames, got {every}")
        self._session = session
        self._frames = frames
        self._find = find
        self._new_id = new_id
        self.every = every
        self.start = start
        self._max_iou = max_iou
        self._on_added = on_added
        self._max_new = max_new
        self._searched: set[int] = set()
        self._waiting: list[Edit] = []
        self.added: list[FoundObject] = []  # in the order they were found
        self.searches: list[tuple[int, int]] = []  # (frame, objects added there)
        self.skipped = 0

    # ------------------------------------------------------------------ which frames

    def due(self, frame: int) -> bool:
        """Whether `frame` is on the grid of every N frames from `start` and not searched yet."""
        return (frame - self.start) % self.every == 0 and frame not in self._searched

    def look(self, result: FrameResult) -> list[FoundObject]:
        """What a pass's consumer calls with each frame result: searches it if due (the
        objects present on it are the tracked ones); returns the objects it will add."""
        if not self.due(result.frame):
            return []
        tracked = {o: r.mask for o, r in result.objects.items() if r.present}
        return self.search(result.frame, tracked)

    # ------------------------------------------------------------------ finding

    def search(self, frame: int, tracked: Mapping[int, np.ndarray]) -> list[FoundObject]:
        """Find on `frame`, keep the instances new against `tracked` (obj_id -> mask), give
        them ids and queue their mask prompts; returns them (not applied yet)."""
        self._searched.add(frame)
        found = sorted(self._find(frame, self._frames[frame]), key=lambda f: -f.score)
        keep = new_detections([f.mask for f in found], list(tracked.values()), self._max_iou)
        objects = []
        for index in keep:
            if self._max_new is not None and len(self.added) >= self._max_new:
                self.skipped += len(keep) - len(objects)
                break
            obj = FoundObject(frame, self._new_id(found[index]), found[index])
            self.added.append(obj)
            objects.append(obj)
            self._waiting.append(lambda obj=obj: self._add(obj))
        self.searches.append((frame, len(objects)))
        return objects

    def _add(self, obj: FoundObject) -> ObjectResult:
        result = self._session.add_prompt(obj.frame, obj.obj_id, Prompt(mask=obj.found.mask))
        if self._on_added is not None:
            self._on_added(obj, result)
        return result

    # ------------------------------------------------------------------ edits

    def take_edits(self) -> list[Edit]:
        """The mask prompts found since the last call (`EditInbox`)."""
        taken, self._waiting = self._waiting, []
        return taken

    def must_yield(self) -> bool:
        """Found objects never end a pass (`EditInbox`)."""
        return False

    def apply_waiting(self) -> int:
        """Apply the queued mask prompts now (no pass is running); returns how many."""
        edits = self.take_edits()
        for edit in edits:
            edit()
        return len(edits)
