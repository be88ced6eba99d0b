"""Masklet project files: `NAME.masklet` (JSON) plus the sidecar folder `NAME.masklet-masks/`.

The JSON document (UTF-8, written atomically) is::

    {
      "format": "masklet-project", "version": 1,
      "video": {"path": "clip.mp4",              # relative to the project file's folder
                "absolute_path": "/data/clip.mp4", # fallback when the pair is moved apart
                "num_frames": 300, "height": 720, "width": 1280},
      "objects": [{"id": 1, "name": "dog", "category": "animal",
                   "color": [255, 0, 0], "visible": true}],
      "prompts": [{"frame": 0, "obj_id": 1, "points": [[x, y, label], ...],
                   "box": [x0, y0, x1, y1] | null, "mask": "<base64 RLE>" | null}],
      "settings": {...},
      "masks": {"folder": "NAME.masklet-masks", "chunk_frames": 256, "chunks": [0, 1],
                "quality": "quality.bin"}   # optional (app/project_quality.py)
    }

Point labels are 1 (foreground) or 0 (background); ids are non-negative ints; a prompt mask
is `encode_rle` bytes (see app/mask_codec.py) in base64, at video resolution.

The sidecar holds one `chunk-NNNNNN.bin` file per 256 frames (format in app/mask_codec.py),
each written atomically, so saving during propagation rewrites only the chunks that changed;
`masks.chunks` lists them (see app/project_masks.py for what that list protects).
Chunks are written before the JSON and a save refuses masks of objects the JSON does not
list, so a crash between files never leaves a set that fails to load.

Loading validates everything and raises `ProjectError` (one line, naming the file and the
problem) for any malformed input. Declared sizes are checked against `app.limits` before
anything is allocated, and prompt masks and masks stay RLE-compressed (a prompt mask's runs
must cover exactly the video's H x W), so a tiny file cannot claim gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.atomic import atomic_write_text, sweep_stale_temporaries
from app.limits import (
    MAX_FRAMES,
    MAX_JSON_BYTES,
    MAX_OBJECTS,
    MAX_POINTS_PER_PROMPT,
    check_frame_size,
)
from app.mask_codec import CHUNK_FRAMES, rle_pixel_count
from app.mask_store import MaskStore
from app.project_masks import (
    MaskFolderError,
    check_writable_folder,
    chunk_index,
    delete_chunks,
    listed_chunks,
    load_chunks,
    store_target,
    write_chunks,
)
from app.project_quality import QUALITY_FILE, load_quality, write_quality
from app.safe_io import JsonError, parse_json, read_regular_file

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FramePrompt",
    "ObjectInfo",
    "Project",
    "ProjectError",
    "load_project",
    "MAX_ID",
    "mask_folder",
    "save_project",
]

FORMAT_NAME = "masklet-project"
FORMAT_VERSION = 1
MAX_ID = 2**31 - 1  # ids and frames are stored as uint32 in chunk files
_MAX_COORD = 1e9


class ProjectError(ValueError):
    """A project file or its masks cannot be read; the message is one line for the user."""


@dataclass
class ObjectInfo:
    obj_id: int
    name: str
    category: str
    color: tuple[int, int, int]
    visible: bool = True


@dataclass
class FramePrompt:
    """The user's input for one object on one frame; coordinates in video pixels."""

    frame: int
    obj_id: int
    points: list[tuple[float, float, int]]  # (x, y, label) with label 1 = fg, 0 = bg
    box: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1)
    # `encode_rle` bytes at video size: kept encoded, as the document and the session
    # use them, so a project of many full-frame prompt masks costs bytes, not gigabytes.
    mask_rle: bytes | None = None


@dataclass
class Project:
    video_path: str
    objects: list[ObjectInfo]
    prompts: list[FramePrompt]
    settings: dict
    num_frames: int
    video_size: tuple[int, int]  # (H, W)
    extra: dict = field(default_factory=dict)  # unknown top-level keys, kept on re-save


def mask_folder(path: str | os.PathLike[str]) -> Path:
    """The sidecar folder holding the mask chunks of project file `path`."""
    p = Path(path)
    return p.with_name(p.name + "-masks")


# -- saving ------------------------------------------------------------------------------------


def save_project(
    path: str | os.PathLike[str], project: Project, masks: MaskStore, *, only_dirty: bool = False
) -> None:
    """Write `project` and `masks` to `path` and its sidecar folder.

    With `only_dirty`, only chunks changed since the last save to this same path are written.
    Raises ValueError if the state is inconsistent (nothing is written then) and OSError if
    the disk refuses; files already on disk stay loadable in both cases.
    """
    path = Path(path).absolute()
    _check_consistent(project, masks)
    folder = mask_folder(path)
    target = store_target(folder)
    full = not only_dirty or not masks.is_tracked(target)
    present = masks.chunks()
    named = masks.quality.has_figures()
    try:
        doc = _project_to_json(path, project, present, quality=named)
        text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"project settings are not JSON-serialisable: {exc}") from None
    check_writable_folder(folder)
    sweep_stale_temporaries(path.parent)
    sweep_stale_temporaries(folder)
    # Ours to delete: chunks the file being replaced listed, and chunks this store loaded
    # from or wrote to this folder. Any other chunk-*.bin there is not ours.
    ours = masks.tracked_chunks(target) | (_listed_on_disk(path) if full else set())
    chunks = present if full else masks.dirty_chunks(target)
    revisions = masks.chunk_revisions(None if full else chunks)
    write_chunks(folder, masks, chunks)
    write_quality(folder, masks, target, full=full, named=named)
    atomic_write_text(path, text + "\n")
    delete_chunks(folder, ours - set(present))
    masks.mark_clean(target, revisions)


def _listed_on_disk(path: Path) -> set[int]:
    """The chunk list of the project file about to be replaced (nothing if unreadable)."""
    try:
        return listed_chunks(parse_json(read_regular_file(path, max_bytes=MAX_JSON_BYTES)))
    except (OSError, ValueError):
        return set()


def _check_consistent(project: Project, masks: MaskStore) -> None:
    height, width = project.video_size
    if tuple(masks.video_size) != tuple(project.video_size):
        raise ValueError(f"masks are {masks.video_size} but the video is {project.video_size}")
    known = {o.obj_id for o in project.objects}
    if len(known) != len(project.objects):
        raise ValueError("object ids are not unique")
    stray = set(masks.object_ids()) - known
    if stray:
        raise ValueError(f"masks exist for objects not in the project: {sorted(stray)}")
    if len({(p.frame, p.obj_id) for p in project.prompts}) != len(project.prompts):
        raise ValueError("two prompts for the same frame and object")
    for p in project.prompts:
        if p.obj_id not in known:
            raise ValueError(f"prompt on frame {p.frame} names unknown object {p.obj_id}")
        if not 0 <= p.frame < project.num_frames:
            raise ValueError(f"prompt frame {p.frame} is outside the video")
        if p.mask_rle is not None and rle_pixel_count(p.mask_rle) != height * width:
            raise ValueError(f"prompt mask on frame {p.frame} does not match the video")


def _project_to_json(path: Path, project: Project, chunks: list[int], *, quality: bool) -> dict:
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
            }
            for o in project.objects
        ],  # fmt: skip
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


# -- loading -----------------------------------------------------------------------------------


def load_project(path: str | os.PathLike[str]) -> tuple[Project, MaskStore]:
    """Read and validate a project; every failure is a one-line `ProjectError`."""
    path = Path(path).absolute()
    try:
        doc = _read_json(path)
        project = _project_from_json(path, doc)
        masks = _load_masks(path, doc, project)
    except (_Invalid, MaskFolderError) as exc:
        raise ProjectError(f"{path.name}: {exc}") from None
    return project, masks


class _Invalid(Exception):
    """Internal: a validation failure, turned into ProjectError with the file name."""


def _read_json(path: Path) -> dict:
    try:
        raw = read_regular_file(path, max_bytes=MAX_JSON_BYTES)
    except FileNotFoundError:
        raise _Invalid("file not found") from None
    except OSError as exc:
        raise _Invalid(f"cannot read ({exc.strerror or exc})") from None
    try:
        doc = parse_json(raw)
    except JsonError as exc:
        raise _Invalid(f"not a valid JSON project file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise _Invalid("not a Masklet project file")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise _Invalid(f"unsupported project format version {version!r} (expected 1)")
    return doc


def _get(obj: dict, key: str, kind: type | tuple[type, ...], where: str):
    if not isinstance(obj, dict):
        raise _Invalid(f"{where} must be an object")
    if key not in obj:
        raise _Invalid(f"{where} is missing {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    bool_ok = bool in kinds
    if (isinstance(value, bool) and not bool_ok) or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise _Invalid(f"{where}.{key} must be {names}, got {type(value).__name__}")
    return value


def _project_from_json(path: Path, doc: dict) -> Project:
    video = _get(doc, "video", dict, "project")
    num_frames = _get(video, "num_frames", int, "video")
    size = (_get(video, "height", int, "video"), _get(video, "width", int, "video"))
    if not 0 < num_frames <= MAX_FRAMES:
        raise _Invalid(f"video.num_frames must be in 1-{MAX_FRAMES}, got {num_frames}")
    try:
        check_frame_size(size[0], size[1], "video")
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    raw_objects = _get(doc, "objects", list, "project")
    if len(raw_objects) > MAX_OBJECTS:
        raise _Invalid(f"{len(raw_objects)} objects, over the limit of {MAX_OBJECTS}")
    objects = [_object_from_json(o, i) for i, o in enumerate(raw_objects)]
    ids = [o.obj_id for o in objects]
    if len(set(ids)) != len(ids):
        raise _Invalid("object ids are not unique")
    raw_prompts = _get(doc, "prompts", list, "project")
    prompts = [
        _prompt_from_json(p, i, num_frames, size, set(ids)) for i, p in enumerate(raw_prompts)
    ]
    if len({(p.frame, p.obj_id) for p in prompts}) != len(prompts):
        raise _Invalid("two prompts for the same frame and object")
    known = {"format", "version", "video", "objects", "prompts", "settings", "masks"}
    return Project(
        video_path=_resolve_video(path, video),
        objects=objects,
        prompts=prompts,
        settings=_get(doc, "settings", dict, "project"),
        num_frames=num_frames,
        video_size=size,
        extra={k: v for k, v in doc.items() if k not in known},
    )


def _resolve_video(path: Path, video: dict) -> str:
    absolute = _get(video, "absolute_path", str, "video")
    relative = video.get("path")
    if relative is not None and not isinstance(relative, str):
        raise _Invalid("video.path must be a string or null")
    if relative:
        candidate = (path.parent / relative).resolve()
        if candidate.exists():
            return str(candidate)
    return absolute


def _object_from_json(obj: object, i: int) -> ObjectInfo:
    where = f"objects[{i}]"
    obj_id = _get(obj, "id", int, where)
    if not 0 <= obj_id <= MAX_ID:
        raise _Invalid(f"{where}.id must be in 0-{MAX_ID}, got {obj_id}")
    color = _get(obj, "color", list, where)
    if len(color) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in color):
        raise _Invalid(f"{where}.color must be three integers 0-255")
    return ObjectInfo(
        obj_id=obj_id,
        name=_get(obj, "name", str, where),
        category=_get(obj, "category", str, where),
        color=(color[0], color[1], color[2]),
        visible=_get(obj, "visible", bool, where),
    )


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
    frame = _get(obj, "frame", int, where)
    if not 0 <= frame < num_frames:
        raise _Invalid(f"{where}.frame {frame} is outside the video (0-{num_frames - 1})")
    obj_id = _get(obj, "obj_id", int, where)
    if obj_id not in ids:
        raise _Invalid(f"{where}.obj_id {obj_id} is not a known object")
    points = []
    raw_points = _get(obj, "points", list, where)
    if len(raw_points) > MAX_POINTS_PER_PROMPT:
        raise _Invalid(f"{where} has {len(raw_points)} points, over {MAX_POINTS_PER_PROMPT}")
    for point in raw_points:
        if not _is_point(point):
            raise _Invalid(f"{where}.points entries must be [x, y, 0|1]")
        points.append((float(point[0]), float(point[1]), int(point[2])))
    box = obj.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
            raise _Invalid(f"{where}.box must be [x0, y0, x1, y1] or null")
        box = tuple(float(v) for v in box)
    return FramePrompt(frame, obj_id, points, box, _prompt_mask(obj.get("mask"), size, where))


def _prompt_mask(value: object, size: tuple[int, int], where: str) -> bytes | None:
    """The RLE bytes, checked to cover exactly the video's pixels; never decoded here."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"{where}.mask must be base64 RLE or null")
    try:
        data = base64.b64decode(value, validate=True)
        covered = rle_pixel_count(data)
    except (binascii.Error, ValueError) as exc:
        raise _Invalid(f"{where}.mask is damaged ({exc})") from None
    if covered != size[0] * size[1]:
        raise _Invalid(
            f"{where}.mask covers {covered} pixels but the video is {size[1]}x{size[0]} (WxH)"
        )
    return data


def _load_masks(path: Path, doc: dict, project: Project) -> MaskStore:
    spec = _get(doc, "masks", dict, "project")
    if _get(spec, "chunk_frames", int, "masks") != CHUNK_FRAMES:
        raise _Invalid(f"unsupported mask chunk size {spec['chunk_frames']}")
    index = chunk_index(spec, project.num_frames)
    masks = MaskStore(project.video_size, num_frames=project.num_frames)
    ids = {o.obj_id for o in project.objects}
    folder = mask_folder(path)
    load_chunks(folder, index, masks, ids, project.num_frames)
    load_quality(folder, spec, masks, ids, project.num_frames, store_target(folder))
    return masks
