"""The project file's JSON document: its layout, and its conversion to and from `Project`.

The document (UTF-8) is::

    {
      "format": "masklet-project", "version": 1,
      "video": {"path": "clip.mp4",              # relative to the project file's folder
                "absolute_path": "/data/clip.mp4", # fallback when the pair is moved apart
                "num_frames": 300, "height": 720, "width": 1280},
      "objects": [{"id": 1, "name": "dog", "category": "animal",
                   "color": [255, 0, 0], "visible": true}],
      "labels": [{"name": "animal", "color": [242, 61, 61]}],  # optional (app/project/labels.py)
      "prompts": [{"frame": 0, "obj_id": 1, "points": [[x, y, label], ...],
                   "box": [x0, y0, x1, y1] | null, "mask": "<base64 RLE>" | null}],
      "settings": {...},
      "masks": {"folder": "NAME.masklet-masks", "chunk_frames": 256, "chunks": [0, 1],
                "quality": "quality.bin"}   # optional (app/project/quality_file.py)
    }

Point labels are 1 (foreground) or 0 (background); ids are non-negative ints; a prompt mask
is `encode_rle` bytes (see app/project/mask_codec.py) in base64, at video resolution.

Projects saved before labels existed have no "labels": theirs are the objects' categories,
in order of first use (and any category an object names is added to the list). Reading
validates every field and raises `InvalidProject` with the reason (app/project/files.py adds the
file name). Declared sizes are checked against `app.safety.limits`, and prompt masks stay
RLE-compressed (their runs must cover exactly the video's H x W), so a tiny file cannot
claim gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from pathlib import Path

from app.project.data import MAX_ID, FramePrompt, ObjectInfo, Project
from app.project.found import check_finder_score
from app.project.labels import labels_from_json, labels_to_json, with_names
from app.project.mask_codec import CHUNK_FRAMES, rle_pixel_count
from app.project.quality_file import QUALITY_FILE
from app.safety.limits import (
    MAX_FRAMES,
    MAX_JSON_BYTES,
    MAX_OBJECTS,
    MAX_POINTS_PER_PROMPT,
    check_frame_size,
)
from app.safety.safe_io import JsonError, parse_json, read_regular_file

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "InvalidProject",
    "get_field",
    "mask_folder",
    "project_from_json",
    "project_to_json",
    "read_document",
]

FORMAT_NAME = "masklet-project"
FORMAT_VERSION = 1
_MAX_COORD = 1e9


class InvalidProject(Exception):
    """A validation failure; `load_project` turns it into ProjectError with the file name."""


def mask_folder(path: str | os.PathLike[str]) -> Path:
    """The sidecar folder holding the mask chunks of project file `path`."""
    p = Path(path)
    return p.with_name(p.name + "-masks")


# -- writing -----------------------------------------------------------------------------------


def project_to_json(path: Path, project: Project, chunks: list[int], *, quality: bool) -> dict:
    """The document for `project` saved at `path` with mask `chunks` (and a quality file)."""
    video = Path(project.video_path).absolute()
    try:
        relative = os.path.relpath(video, path.parent)
    except ValueError:  # different drives on Windows
        relative = None
    height, width = project.video_size
    return {
        **project.extra,
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "video": {
            "path": None if relative is None else Path(relative).as_posix(),
            "absolute_path": str(video),
            "num_frames": project.num_frames,
            "height": height,
            "width": width,
        },
        "objects": [
            {
                "id": o.obj_id,
                "name": o.name,
                "category": o.category,
                "color": [int(c) for c in o.color],
                "visible": bool(o.visible),
                **({} if o.finder_score is None else {"finder_score": float(o.finder_score)}),
            }
            for o in project.objects
        ],  # fmt: skip
        "labels": labels_to_json(project.labels),
        "prompts": [_prompt_to_json(p) for p in project.prompts],
        "settings": project.settings,
        "masks": {
            "folder": mask_folder(path).name,
            "chunk_frames": CHUNK_FRAMES,
            "chunks": chunks,
            **({"quality": QUALITY_FILE} if quality else {}),
        },
    }


def _prompt_to_json(p: FramePrompt) -> dict:
    mask = None if p.mask_rle is None else base64.b64encode(p.mask_rle).decode("ascii")
    return {
        "frame": p.frame,
        "obj_id": p.obj_id,
        "points": [[float(x), float(y), int(label)] for x, y, label in p.points],
        "box": None if p.box is None else [float(v) for v in p.box],
        "mask": mask,
    }


# -- reading -----------------------------------------------------------------------------------


def read_document(path: Path) -> dict:
    """The parsed document of project file `path`, after checking its size, format and version."""
    try:
        raw = read_regular_file(path, max_bytes=MAX_JSON_BYTES)
    except FileNotFoundError:
        raise InvalidProject("file not found") from None
    except OSError as exc:
        raise InvalidProject(f"cannot read ({exc.strerror or exc})") from None
    try:
        doc = parse_json(raw)
    except JsonError as exc:
        raise InvalidProject(f"not a valid JSON project file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise InvalidProject("not a Masklet project file")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise InvalidProject(f"unsupported project format version {version!r} (expected 1)")
    return doc


def get_field(obj: dict, key: str, kind: type | tuple[type, ...], where: str):
    """`obj[key]`, checked to be of `kind` (a bool is not an int); `where` names `obj`."""
    if not isinstance(obj, dict):
        raise InvalidProject(f"{where} must be an object")
    if key not in obj:
        raise InvalidProject(f"{where} is missing {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    bool_ok = bool in kinds
    if (isinstance(value, bool) and not bool_ok) or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise InvalidProject(f"{where}.{key} must be {names}, got {type(value).__name__}")
    return value


def project_from_json(path: Path, doc: dict) -> Project:
    """The validated `Project` of a document read from `path` (its "masks" are not read)."""
    video = get_field(doc, "video", dict, "project")
    num_frames = get_field(video, "num_frames", int, "video")
    size = (get_field(video, "height", int, "video"), get_field(video, "width", int, "video"))
    if not 0 < num_frames <= MAX_FRAMES:
        raise InvalidProject(f"video.num_frames must be in 1-{MAX_FRAMES}, got {num_frames}")
    try:
        check_frame_size(size[0], size[1], "video")
    except ValueError as exc:
        raise InvalidProject(str(exc)) from None
    raw_objects = get_field(doc, "objects", list, "project")
    if len(raw_objects) > MAX_OBJECTS:
        raise InvalidProject(f"{len(raw_objects)} objects, over the limit of {MAX_OBJECTS}")
    objects = [_object_from_json(o, i) for i, o in enumerate(raw_objects)]
    ids = [o.obj_id for o in objects]
    if len(set(ids)) != len(ids):
        raise InvalidProject("object ids are not unique")
    raw_prompts = get_field(doc, "prompts", list, "project")
    prompts = [
        _prompt_from_json(p, i, num_frames, size, set(ids)) for i, p in enumerate(raw_prompts)
    ]
    if len({(p.frame, p.obj_id) for p in prompts}) != len(prompts):
        raise InvalidProject("two prompts for the same frame and object")
    known = {"format", "version", "video", "objects", "labels", "prompts", "settings", "masks"}
    try:
        labels = labels_from_json(doc.get("labels", []))
    except ValueError as exc:
        raise InvalidProject(str(exc)) from None
    return Project(
        video_path=_resolve_video(path, video),
        objects=objects,
        prompts=prompts,
        settings=get_field(doc, "settings", dict, "project"),
        num_frames=num_frames,
        video_size=size,
        extra={k: v for k, v in doc.items() if k not in known},
        labels=with_names(labels, (o.category for o in objects)),
    )


def _resolve_video(path: Path, video: dict) -> str:
    absolute = get_field(video, "absolute_path", str, "video")
    relative = video.get("path")
    if relative is not None and not isinstance(relative, str):
        raise InvalidProject("video.path must be a string or null")
    if relative:
        candidate = (path.parent / relative).resolve()
        if candidate.exists():
            return str(candidate)
    return absolute


def _object_from_json(obj: object, i: int) -> ObjectInfo:
    where = f"objects[{i}]"
    obj_id = get_field(obj, "id", int, where)
    if not 0 <= obj_id <= MAX_ID:
        raise InvalidProject(f"{where}.id must be in 0-{MAX_ID}, got {obj_id}")
    color = get_field(obj, "color", list, where)
    if len(color) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in color):
        raise InvalidProject(f"{where}.color must be three integers 0-255")
    return ObjectInfo(
        obj_id=obj_id,
        name=get_field(obj, "name", str, where),
        category=get_field(obj, "category", str, where),
        color=(color[0], color[1], color[2]),
        visible=get_field(obj, "visible", bool, where),
        finder_score=_finder_score(obj, where),
    )


def _finder_score(obj: dict, where: str) -> float | None:
    try:
        return check_finder_score(obj.get("finder_score"), where)
    except ValueError as exc:
        raise InvalidProject(str(exc)) from None


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    if _is_int(v):
        return abs(v) <= _MAX_COORD
    return isinstance(v, float) and math.isfinite(v)


def _is_point(point: object) -> bool:
    if not (isinstance(point, list) and len(point) == 3):
        return False
    x, y, label = point
    return _is_number(x) and _is_number(y) and _is_int(label) and label in (0, 1)


def _prompt_from_json(
    obj: object, i: int, num_frames: int, size: tuple[int, int], ids: set[int]
) -> FramePrompt:
    where = f"prompts[{i}]"
    frame = get_field(obj, "frame", int, where)
    if not 0 <= frame < num_frames:
        raise InvalidProject(f"{where}.frame {frame} is outside the video (0-{num_frames - 1})")
    obj_id = get_field(obj, "obj_id", int, where)
    if obj_id not in ids:
        raise InvalidProject(f"{where}.obj_id {obj_id} is not a known object")
    points = []
    raw_points = get_field(obj, "points", list, where)
    if len(raw_points) > MAX_POINTS_PER_PROMPT:
        raise InvalidProject(f"{where} has {len(raw_points)} points, over {MAX_POINTS_PER_PROMPT}")
    for point in raw_points:
        if not _is_point(point):
            raise InvalidProject(f"{where}.points entries must be [x, y, 0|1]")
        points.append((float(point[0]), float(point[1]), int(point[2])))
    box = obj.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
            raise InvalidProject(f"{where}.box must be [x0, y0, x1, y1] or null")
        box = tuple(float(v) for v in box)
    return FramePrompt(frame, obj_id, points, box, _prompt_mask(obj.get("mask"), size, where))


def _prompt_mask(value: object, size: tuple[int, int], where: str) -> bytes | None:
    """The RLE bytes, checked to cover exactly the video's pixels; never decoded here."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidProject(f"{where}.mask must be base64 RLE or null")
    try:
        data = base64.b64decode(value, validate=True)
        covered = rle_pixel_count(data)
    except (binascii.Error, ValueError) as exc:
        raise InvalidProject(f"{where}.mask is damaged ({exc})") from None
    if covered != size[0] * size[1]:
        raise InvalidProject(
            f"{where}.mask covers {covered} pixels but the video is {size[1]}x{size[0]} (WxH)"
        )
    return data
