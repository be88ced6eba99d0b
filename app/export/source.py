"""What an exporter reads from (`ExportSource`) and how much of it to write (`ExportOptions`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ExportCancelled",
    "ExportOptions",
    "ExportSource",
    "ObjectMeta",
    "Progress",
    "ShouldStop",
    "StoreSource",
    "finder_score_entry",
    "frame_scores",
    "selected_frames",
    "selected_objects",
    "source_labels",
]

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

IMAGE_FORMATS = ("jpg", "png")
# Where each format keeps the finder's score of an object it found: a COCO annotation's, a
# YouTube-VIS annotation's and a PNG export's objects.json entry's field.
FINDER_SCORE_KEY = "finder_score"
# The `score` of a mask without a predicted IoU: one the user drew or imported (or from a
# project saved before scores were recorded). A user's mask is the ground truth itself.
UNKNOWN_SCORE = 1.0


class ExportCancelled(Exception):
    """Raised in a writer once `should_stop()` is true; the runner turns it into a result."""


@dataclass(frozen=True)
class ObjectMeta:
    """One tracked object as the exporters see it; `color` is optional (palette colour if None);
    `finder_score`: the score SAM 3's finder found it with, if it was found (exported as
    FINDER_SCORE_KEY, the project file's name for it too: `app.project.found`)."""

    obj_id: int
    name: str
    category: str
    color: tuple[int, int, int] | None = None
    finder_score: float | None = None


@runtime_checkable
class ExportSource(Protocol):
    """Read-only view of a video and its masks, one frame at a time.

    `masks(frame)` returns present objects only, each an (H, W) bool array; frames are
    fetched on demand so an exporter never needs every frame's masks at once.
    """

    name: str
    num_frames: int
    video_size: tuple[int, int]  # (H, W)
    fps: float
    objects: Sequence[ObjectMeta]

    def masks(self, frame: int) -> dict[int, np.ndarray]: ...

    def image(self, frame: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ExportOptions:
    """Which frames and objects to export, and the optional extras.

    Frames are `range(start, stop, step)` with `stop=None` meaning the end of the video;
    `object_ids=None` means every object. `images` writes the source frames alongside
    ("jpg" or "png"); `polygons` (COCO only) writes lossy polygons instead of RLE;
    `binary_masks` (PNG only) also writes one black/white PNG per object and frame.
    """

    start: int = 0
    stop: int | None = None
    step: int = 1
    object_ids: tuple[int, ...] | None = None
    images: str | None = None
    polygons: bool = False
    binary_masks: bool = False
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        if self.start < 0:
            raise ValueError(f"start frame must be >= 0, got {self.start}")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"frame range {self.start}:{self.stop} is empty")
        if self.images is not None and self.images not in IMAGE_FORMATS:
            raise ValueError(f"images must be one of {IMAGE_FORMATS} or None, got {self.images!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")


def frame_scores(source: ExportSource, frame: int, obj_ids) -> dict[int, float]:
    """Each object's export `score` on `frame`: the predicted IoU, rounded to 4 places,
    clipped to [0, 1]; UNKNOWN_SCORE where there is none (or the source keeps none)."""
    known = source.scores(frame) if hasattr(source, "scores") else {}
    out = {}
    for obj_id in obj_ids:
        value = known.get(obj_id)
        out[obj_id] = UNKNOWN_SCORE if value is None else round(min(max(value, 0.0), 1.0), 4)
    return out


def finder_score_entry(obj: ObjectMeta) -> dict[str, float]:
    """`{"finder_score": s}` for an object the finder found, `{}` for any other: what each
    format adds to that object's entry."""
    if obj.finder_score is None or not math.isfinite(obj.finder_score):
        return {}
    return {FINDER_SCORE_KEY: round(min(max(float(obj.finder_score), 0.0), 1.0), 4)}


def source_labels(source: ExportSource) -> list[str]:
    """The label names the exported categories start with, in order (none if the source
    keeps no label list, e.g. a prompts file's objects)."""
    return list(getattr(source, "labels", ()))


def selected_frames(source: ExportSource, options: ExportOptions) -> range:
    """The frame indices to export; raises ValueError when the range is outside the video."""
    if options.start >= source.num_frames:
        raise ValueError(
            f"start frame {options.start} is past the end of the video ({source.num_frames} frames)"
        )
    stop = source.num_frames if options.stop is None else options.stop
    if stop > source.num_frames:
        raise ValueError(f"frame range ends at {stop} but the video has {source.num_frames} frames")
    return range(options.start, stop, options.step)


def selected_objects(source: ExportSource, options: ExportOptions) -> list[ObjectMeta]:
    """The objects to export, in the source's order; raises ValueError for unknown ids."""
    if options.object_ids is None:
        return list(source.objects)
    known = {obj.obj_id for obj in source.objects}
    unknown = sorted(set(options.object_ids) - known)
    if unknown:
        raise ValueError(f"unknown object id(s) {unknown}; the project has {sorted(known)}")
    wanted = set(options.object_ids)
    return [obj for obj in source.objects if obj.obj_id in wanted]


class FrameLoop:
    """Shared per-frame bookkeeping: progress reports and cancellation checks."""

    def __init__(
        self, total: int, progress: Progress | None, should_stop: ShouldStop | None
    ) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._should_stop = should_stop
        if progress is not None:
            progress(0, total)

    def check(self) -> None:
        """Raise ExportCancelled if the caller asked to stop."""
        if self._should_stop is not None and self._should_stop():
            raise ExportCancelled

    def step(self) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)


class StoreSource:
    """`ExportSource` over a video reader, a mask store and the project's objects.

    Duck-typed so this module needs neither the video nor the storage package:
    `reader` has `len()`, `fps`, `size` (H, W) and `reader[i] -> (H, W, 3) uint8 RGB`;
    `store` has `objects_at(frame) -> {obj_id: (H, W) bool}` (present objects only).
    """

    def __init__(
        self,
        *,
        name: str,
        reader,
        store,
        objects: Sequence[ObjectMeta],
        labels: Sequence[str] = (),
    ) -> None:
        size = tuple(int(v) for v in reader.size)
        if tuple(store.video_size) != size:
            raise ValueError(f"masks are {tuple(store.video_size)} but the video is {size}")
        self.name = name
        self.num_frames = len(reader)
        self.video_size = size
        self.fps = float(reader.fps)
        self.objects = list(objects)
        self.labels = list(labels)  # the project's label names: the exported categories
        self._reader = reader
        self._store = store

    @classmethod
    def from_project(cls, project, store, reader) -> StoreSource:
        """Adapter for a loaded `app.project.files.Project` (its objects' ids, names, categories
        and colours, and its label list), named after the video file."""
        objects = [
            ObjectMeta(
                o.obj_id, o.name, o.category, tuple(o.color), getattr(o, "finder_score", None)
            )
            for o in project.objects
        ]
        name = Path(project.video_path).stem or "video"
        labels = [label.name for label in getattr(project, "labels", ())]
        return cls(name=name, reader=reader, store=store, objects=objects, labels=labels)

    def masks(self, frame: int) -> dict[int, np.ndarray]:
        return self._store.objects_at(frame)

    def scores(self, frame: int) -> dict[int, float]:
        """Predicted IoU of the objects whose figure on `frame` is known."""
        quality = getattr(self._store, "quality", None)
        if quality is None:
            return {}
        found = {o.obj_id: quality.get(frame, o.obj_id)[0] for o in self.objects}
        return {obj_id: iou for obj_id, iou in found.items() if iou == iou}

    def image(self, frame: int) -> np.ndarray:
        return self._reader[frame]
