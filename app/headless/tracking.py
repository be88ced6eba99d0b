"""The tracking of a headless run: prompts in, a propagation per direction within the frame
range, and, with phrases to find, SAM 3's finder on the first frame and every N frames.

Each propagation is a `model.engine.live_pass.LivePass` whose first engine pass is "full"
(every frame from the first keyframe, as a fresh run wants). With phrases, its inbox is a
`model.engine.auto_find.AutoFind`: on a due frame the finder's new instances become objects
keyed there, and the pass tracks them from there on, as the app's propagation takes a
correction; without phrases nothing arrives and the pass is the plain propagation.

The finder runs first on the first frame of the range the tracking visits (the last one
when tracking backward only), before any pass: with no prompts there is nothing to track
before it. If it finds nothing there either, the due frames after it are searched in turn
until something is (or the range ends: then nothing is tracked, and the export is empty).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.export import ObjectMeta
from app.export.source import Progress
from app.headless.finding import FindSpec, FoundObjects
from app.project.mask_store import MaskStore
from model.engine.auto_find import AutoFind, FoundObject
from model.engine.live_pass import LivePass
from model.engine.prompts import FrameResult, ObjectResult
from model.engine.session import Prompt, TrackingSession

__all__ = ["Tracked", "Window", "pass_frames", "track"]

# At most this many objects in a palette PNG (index 0 is the background).
_PNG_OBJECTS = 255


@dataclass
class Tracked:
    store: MaskStore
    objects: list[ObjectMeta]
    found: list[FoundObject] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """The frames to track: [start, stop), and the direction."""

    start: int
    stop: int
    direction: str

    @property
    def first(self) -> int:
        """The first frame the tracking visits, where finding starts."""
        return self.stop - 1 if self.direction == "backward" else self.start


def track(
    model,
    reader,
    prompts: list[tuple[int, int, Prompt]],
    objects: list[ObjectMeta],
    window: Window,
    *,
    device: str,
    precision: str,
    fmt: str,
    progress: Progress | None = None,
    finder=None,
    find: FindSpec | None = None,
    note: Callable[[str], None] | None = None,
) -> Tracked:
    """Prompt, find, propagate within `window`; every object's masks in a store."""
    store = MaskStore(tuple(reader.size), num_frames=len(reader))
    session = TrackingSession(model, reader, device=device, precision=precision)
    for frame, obj_id, prompt in prompts:
        _record(store, frame, session.add_prompt(frame, obj_id, prompt))
    auto = names = None
    if finder is not None and find is not None:
        names = FoundObjects(finder, find, session.precision, objects, note)
        auto = _auto_find(session, reader, store, names, find, window, fmt, len(objects))
        _first_finds(session, store, auto, names, window)
    if _has_keyframes(session):
        _propagate(session, store, window, auto, progress, names)
    elif auto is None:
        raise ValueError("every mask is empty; nothing to track")
    found = [] if names is None else names.objects
    if names is not None and not found and note is not None:
        searched = len(auto.searches) if auto is not None else 0
        note(f"found nothing on the {searched} frame(s) searched; nothing tracked from finds")
    return Tracked(store, [*objects, *found], [] if auto is None else auto.added)


def _auto_find(session, reader, store, names, find, window, fmt, taken) -> AutoFind:
    room = names.room
    if fmt == "png":
        room = min(room, _PNG_OBJECTS - taken)

    def added(obj: FoundObject, result: ObjectResult) -> None:
        _record(store, obj.frame, result)

    every = find.every or len(reader) + 1  # without --find-every: the first frame only
    return AutoFind(
        session,
        reader,
        names.find,
        new_id=names.new_id,
        every=every,
        start=window.first,
        on_added=added,
        max_new=room,
    )


def _first_finds(session, store, auto: AutoFind, names: FoundObjects, window: Window) -> None:
    """The first find, before any pass; while nothing is tracked, the next due frames."""
    step = -1 if window.direction == "backward" else 1
    frame = window.first
    while window.start <= frame < window.stop:
        tracked = {o: m for o, m in store.objects_at(frame).items() if m.any()}
        names.report(frame, auto.search(frame, tracked))
        auto.apply_waiting()
        if _has_keyframes(session) or auto.every > window.stop - window.start:
            return
        frame += step * auto.every


def _propagate(session, store, window, auto, progress, names) -> None:
    directions = ("forward", "backward") if window.direction == "both" else (window.direction,)
    total = sum(len(_span(session, window, d)) for d in directions)
    done: set[tuple[str, int]] = set()
    if progress is not None:
        progress(0, total)
    for direction in directions:
        span = _span(session, window, direction)  # found keyframes may have moved its start
        if not span:
            continue
        inbox = auto if auto is not None else _NoEdits()
        live = LivePass(
            session, None, direction, inbox=inbox, cancel=threading.Event(), mode="full"
        )
        frames = live.frames()
        try:
            for result in frames:
                _record_frame(store, result)
                if auto is not None and window.start <= result.frame < window.stop:
                    names.report(result.frame, auto.look(result))
                done.add((direction, result.frame))
                if progress is not None:
                    progress(min(len(done), total), total)
                if result.frame == span[-1]:
                    break  # nothing past the range is computed
        finally:
            frames.close()
        if auto is not None:
            auto.apply_waiting()  # found on the last frame: keyed, tracked no further


def _span(session, window: Window, direction: str) -> range:
    keys = [k for o in session.object_ids for k in session.keyframes(o)]
    return pass_frames(keys, window, direction)


def pass_frames(keys: list[int], window: Window, direction: str) -> range:
    """The frames a pass in `direction` visits, in order: from the first keyframe up to the
    window's last frame (backward: from the last keyframe down to its first)."""
    if not keys:
        return range(0)
    if direction == "forward":
        return range(min(keys), window.stop)
    return range(max(keys), window.start - 1, -1)


class _NoEdits:
    def take_edits(self) -> list:
        return []

    def must_yield(self) -> bool:
        return False


def _has_keyframes(session) -> bool:
    return any(session.keyframes(o) for o in session.object_ids)


def _record_frame(store: MaskStore, result: FrameResult) -> None:
    for obj in result.objects.values():
        _record(store, result.frame, obj)


def _record(store: MaskStore, frame: int, result) -> None:
    """Store one object's mask; absent when the model says so or the mask is empty."""
    present = bool(result.present and result.mask.any())
    store.set(frame, result.obj_id, result.mask if present else None, present=present)
    store.quality.set_confidence(frame, result.obj_id, float(result.iou), float(result.score))
