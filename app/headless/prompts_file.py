"""The prompts file of `masklet track`: which objects to track and where they are.

Schema (JSON; unknown keys are errors, so typos do not pass silently):

    {
      "version": 1,                                 optional
      "objects": [                                  one or more
        {
          "id": 1,                                  integer in 1-2147483647, unique
          "name": "car",                            optional, default "object <id>"
          "category": "vehicle",                    optional, default "object"
          "prompts": [                              one or more, one per frame
            {
              "frame": 0,                           0-based frame index
              "points": [[x, y, 1], [x, y, 0]],     optional; label 1 = object, 0 = background
              "box": [x0, y0, x1, y1]               optional; needs x0 < x1 and y0 < y1
            }
          ]
        }
      ]
    }

Coordinates are pixels of the original video frame. Every prompt needs points, a box,
or both. Errors name the offending place, e.g. `objects[1].prompts[0].box: expected 4
numbers`.

The file is read as a hostile input: only a regular file of at most
`MAX_PROMPTS_FILE_BYTES`, strict JSON (`app.safety.safe_io.parse_json`), and list lengths
(objects, points) are checked against `app.safety.limits` before any array is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.project.files import MAX_ID
from app.project.labels import DEFAULT_CATEGORY
from app.safety.limits import MAX_OBJECTS, MAX_POINTS_PER_PROMPT, MAX_PROMPTS_FILE_BYTES
from app.safety.safe_io import JsonError, parse_json, read_regular_file

__all__ = ["FramePrompt", "PromptedObject", "PromptsError", "PromptsFile", "load_prompts"]

_TOP_KEYS = {"version", "objects"}
_OBJECT_KEYS = {"id", "name", "category", "prompts"}
_PROMPT_KEYS = {"frame", "points", "box"}
# Far outside any frame (MAX_FRAME_SIDE is 32768) yet exact in float32's range, so a
# coordinate that passes can be cast without overflow; check_video then bounds it by the frame.
_MAX_COORD = 1e9


class PromptsError(ValueError):
    """The prompts file is malformed or does not fit the video; the message is one line."""


@dataclass(frozen=True)
class FramePrompt:
    frame: int
    points: np.ndarray | None  # (N, 2) float32, xy
    labels: np.ndarray | None  # (N,) int32, 1 = object, 0 = background
    box: np.ndarray | None  # (4,) float32, x0 y0 x1 y1


@dataclass(frozen=True)
class PromptedObject:
    obj_id: int
    name: str
    category: str
    prompts: tuple[FramePrompt, ...]


@dataclass(frozen=True)
class PromptsFile:
    objects: tuple[PromptedObject, ...]

    @classmethod
    def parse(cls, data: Any) -> PromptsFile:
        """Validate decoded JSON; raises PromptsError naming the first bad place."""
        _check_keys(data, _TOP_KEYS, "prompts file")
        if data.get("version", 1) != 1:
            raise PromptsError(f"version: unsupported version {data['version']!r} (expected 1)")
        objects = data.get("objects")
        if not isinstance(objects, list) or not objects:
            raise PromptsError("objects: expected a non-empty list")
        if len(objects) > MAX_OBJECTS:
            raise PromptsError(f"objects: {len(objects)} objects, over the limit of {MAX_OBJECTS}")
        parsed = tuple(_parse_object(obj, f"objects[{i}]") for i, obj in enumerate(objects))
        seen: set[int] = set()
        for i, obj in enumerate(parsed):
            if obj.obj_id in seen:
                raise PromptsError(f"objects[{i}].id: id {obj.obj_id} is used twice")
            seen.add(obj.obj_id)
        return cls(parsed)

    def check_video(self, num_frames: int, video_size: tuple[int, int]) -> None:
        """Raise PromptsError unless every frame and coordinate lies inside the video."""
        height, width = video_size
        for i, obj in enumerate(self.objects):
            for j, prompt in enumerate(obj.prompts):
                where = f"objects[{i}].prompts[{j}]"
                if prompt.frame >= num_frames:
                    raise PromptsError(
                        f"{where}.frame: {prompt.frame} is past the end of the video "
                        f"({num_frames} frames)"
                    )
                xy = [] if prompt.points is None else list(prompt.points)
                if prompt.box is not None:
                    xy += [prompt.box[:2], prompt.box[2:]]
                for x, y in xy:
                    if not (0 <= x <= width and 0 <= y <= height):
                        raise PromptsError(
                            f"{where}: point ({x:g}, {y:g}) is outside the {width}x{height} frame"
                        )


def load_prompts(path: str | Path) -> PromptsFile:
    """Read and validate a prompts file."""
    try:
        raw = read_regular_file(path, max_bytes=MAX_PROMPTS_FILE_BYTES)
    except OSError as exc:
        raise PromptsError(f"cannot read prompts file {path}: {exc.strerror or exc}") from None
    try:
        data = parse_json(raw)
    except JsonError as exc:
        raise PromptsError(f"prompts file {path}: {exc}") from None
    try:
        return PromptsFile.parse(data)
    except PromptsError as exc:
        raise PromptsError(f"prompts file {path}: {exc}") from None


def _check_keys(data: Any, allowed: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise PromptsError(f"{where}: expected an object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PromptsError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _is_number(value: Any) -> bool:
    """A JSON number usable as a pixel coordinate (False for NaN, infinities, bools)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return -_MAX_COORD <= value <= _MAX_COORD


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_object(data: Any, where: str) -> PromptedObject:
    _check_keys(data, _OBJECT_KEYS, where)
    obj_id = data.get("id")
    if not _is_int(obj_id) or not 0 < obj_id <= MAX_ID:
        raise PromptsError(f"{where}.id: expected an integer in 1-{MAX_ID}, got {obj_id!r}")
    name = data.get("name", f"object {obj_id}")
    category = data.get("category", DEFAULT_CATEGORY)
    for key, value in (("name", name), ("category", category)):
        if not isinstance(value, str) or not value.strip():
            raise PromptsError(f"{where}.{key}: expected a non-empty string")
    prompts = data.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise PromptsError(f"{where}.prompts: expected a non-empty list")
    parsed = tuple(_parse_prompt(p, f"{where}.prompts[{j}]") for j, p in enumerate(prompts))
    frames: set[int] = set()
    for j, prompt in enumerate(parsed):
        if prompt.frame in frames:
            raise PromptsError(
                f"{where}.prompts[{j}].frame: frame {prompt.frame} already has a prompt for "
                "this object (put all its points in one prompt)"
            )
        frames.add(prompt.frame)
    return PromptedObject(obj_id, name, category, parsed)


def _parse_prompt(data: Any, where: str) -> FramePrompt:
    _check_keys(data, _PROMPT_KEYS, where)
    frame = data.get("frame")
    if not _is_int(frame) or frame < 0:
        raise PromptsError(f"{where}.frame: expected a frame index >= 0, got {frame!r}")
    if "points" not in data and "box" not in data:
        raise PromptsError(f"{where}: needs 'points', 'box' or both")
    points = labels = box = None
    if "points" in data:
        points, labels = _parse_points(data["points"], f"{where}.points")
    if "box" in data:
        box = _parse_box(data["box"], f"{where}.box")
    return FramePrompt(frame, points, labels, box)


def _parse_points(data: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, list) or not data:
        raise PromptsError(f"{where}: expected a non-empty list of [x, y, label]")
    if len(data) > MAX_POINTS_PER_PROMPT:
        raise PromptsError(
            f"{where}: {len(data)} points, over the limit of {MAX_POINTS_PER_PROMPT} per prompt"
        )
    for k, point in enumerate(data):
        if not isinstance(point, list) or len(point) != 3:
            raise PromptsError(f"{where}[{k}]: expected [x, y, label]")
        if not (_is_number(point[0]) and _is_number(point[1])):
            raise PromptsError(f"{where}[{k}]: x and y must be numbers within ±{_MAX_COORD:g}")
        if point[2] not in (0, 1) or isinstance(point[2], bool):
            raise PromptsError(f"{where}[{k}]: label must be 1 (object) or 0 (background)")
    array = np.asarray(data, dtype=np.float64)
    return array[:, :2].astype(np.float32), array[:, 2].astype(np.int32)


def _parse_box(data: Any, where: str) -> np.ndarray:
    if not isinstance(data, list) or len(data) != 4 or not all(_is_number(v) for v in data):
        raise PromptsError(f"{where}: expected 4 numbers [x0, y0, x1, y1] within ±{_MAX_COORD:g}")
    x0, y0, x1, y1 = data
    if not (x0 < x1 and y0 < y1):
        raise PromptsError(f"{where}: needs x0 < x1 and y0 < y1, got {data}")
    return np.asarray(data, dtype=np.float32)
