"""YouTube-VIS JSON export: one video, one annotation per object with per-frame lists.

Each annotation carries a `score` (as YouTube-VIS results do: the mean predicted IoU over
the object's masked frames) and `scores`, per frame like `areas` (null where absent); an
object SAM 3's finder found also carries the score it was found with (`finder_score`).

YouTube-VIS groups by object, but masks arrive by frame. Each object's RLE strings go
to its own spooled temporary file as they are encoded (kept in RAM up to a few MB,
then spilled to disk) and are copied into the output at the end, so memory never
holds decoded masks for more than one frame; boxes and areas are a few numbers per
frame and stay in lists.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from app.export.coco import category_table
from app.export.files import atomic_output, frame_file_name, write_frame_image
from app.export.rle import encode_mask
from app.export.source import (
    ExportOptions,
    ExportSource,
    FrameLoop,
    ObjectMeta,
    finder_score_entry,
    frame_scores,
    source_labels,
)

__all__ = ["write_ytvis"]

SPOOL_BYTES = 4 * 1024 * 1024


@dataclass
class _Track:
    """Per-object accumulator: RLE JSON fragments spooled, boxes and areas in memory."""

    segmentations: IO[str]
    bboxes: list = field(default_factory=list)
    areas: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    present: bool = False

    def add(self, mask, score: float) -> None:
        sep = "," if self.bboxes else ""
        if mask is None or not mask.any():
            self.segmentations.write(sep + "null")
            self.bboxes.append(None)
            self.areas.append(None)
            self.scores.append(None)
            return
        encoded = encode_mask(mask)
        self.segmentations.write(sep + json.dumps(encoded.rle))
        self.bboxes.append(encoded.bbox)
        self.areas.append(encoded.area)
        self.scores.append(score)
        self.present = True

    def score(self) -> float:
        """The track's score, as in YouTube-VIS results: the mean over its masked frames."""
        known = [s for s in self.scores if s is not None]
        return round(sum(known) / len(known), 4)


def _write_document(
    stream: TextIO,
    source: ExportSource,
    video: dict,
    objects: Sequence[ObjectMeta],
    tracks: dict[int, _Track],
) -> None:
    categories, category_of = category_table(objects, source_labels(source))
    info = {"description": f"Masklet export of {source.name}", "fps": source.fps}
    stream.write('{"info": ' + json.dumps(info))
    stream.write(',\n"categories": ' + json.dumps(categories))
    stream.write(',\n"videos": [' + json.dumps(video) + "]")
    stream.write(',\n"annotations": [')
    first = True
    for ann_id, obj in enumerate((o for o in objects if tracks[o.obj_id].present), start=1):
        track = tracks[obj.obj_id]
        head = {
            "id": ann_id,
            "video_id": video["id"],
            "category_id": category_of[obj.obj_id],
            "iscrowd": 0,
            "track_id": obj.obj_id,
            "name": obj.name,
            "height": video["height"],
            "width": video["width"],
            "length": video["length"],
            "bboxes": track.bboxes,
            "areas": track.areas,
            "score": track.score(),
            "scores": track.scores,
            **finder_score_entry(obj),
        }
        stream.write(("" if first else ",") + "\n" + json.dumps(head)[:-1])
        stream.write(', "segmentations": [')
        track.segmentations.seek(0)
        shutil.copyfileobj(track.segmentations, stream)
        stream.write("]}")
        first = False
    stream.write("]}\n")


def write_ytvis(
    source: ExportSource,
    out: Path,
    frames: range,
    objects: Sequence[ObjectMeta],
    options: ExportOptions,
    loop: FrameLoop,
) -> list[Path]:
    """Write a YouTube-VIS JSON file at `out` (frame images under `out.parent` if asked)."""
    height, width = source.video_size
    ext = options.images or "jpg"
    file_names = [frame_file_name(source.name, frame, ext) for frame in frames]
    video = {
        "id": 1,
        "name": source.name,
        "width": width,
        "height": height,
        "length": len(frames),
        "file_names": file_names,
        "frame_indices": list(frames),
    }
    written = []
    with contextlib.ExitStack() as spools:
        tracks = {
            obj.obj_id: _Track(
                spools.enter_context(tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+"))
            )
            for obj in objects
        }
        for frame, name in zip(frames, file_names, strict=True):
            loop.check()
            masks = source.masks(frame)
            scores = frame_scores(source, frame, masks)
            for obj in objects:
                tracks[obj.obj_id].add(masks.get(obj.obj_id), scores.get(obj.obj_id, 0.0))
            if options.images is not None:
                rgb = source.image(frame)
                written.append(
                    write_frame_image(out.parent, name, rgb, quality=options.jpeg_quality)
                )
            loop.step()
        with atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8") as stream:
            _write_document(stream, source, video, objects, tracks)
    return [out, *written]
