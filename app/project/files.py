"""Masklet project files: `NAME.masklet` (JSON) plus the sidecar folder `NAME.masklet-masks/`.

The JSON document (layout and validation in app/project/format.py) is written atomically.
The sidecar holds one `chunk-NNNNNN.bin` file per 256 frames (format in app/project/mask_codec.py),
each written atomically, so saving during propagation rewrites only the chunks that changed;
`masks.chunks` lists them (see app/project/masks.py for what that list protects).
Chunks are written before the JSON and a save refuses masks of objects the JSON does not
list, so a crash between files never leaves a set that fails to load.

Loading validates everything and raises `ProjectError` (one line, naming the file and the
problem) for any malformed input. Declared sizes are checked against `app.safety.limits` before
anything is allocated, and prompt masks and masks stay RLE-compressed (a prompt mask's runs
must cover exactly the video's H x W), so a tiny file cannot claim gigabytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.project.data import MAX_ID, FramePrompt, ObjectInfo, Project
from app.project.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    InvalidProject,
    get_field,
    mask_folder,
    project_from_json,
    project_to_json,
    read_document,
)
from app.project.mask_codec import CHUNK_FRAMES, rle_pixel_count
from app.project.mask_store import MaskStore
from app.project.masks import (
    MaskFolderError,
    check_writable_folder,
    chunk_index,
    delete_chunks,
    listed_chunks,
    load_chunks,
    store_target,
    write_chunks,
)
from app.project.quality_file import load_quality, write_quality
from app.safety.atomic import atomic_write_text, sweep_stale_temporaries
from app.safety.limits import MAX_JSON_BYTES
from app.safety.safe_io import parse_json, read_regular_file

# The project API lives here; the data classes and format names are re-exported because
# callers import them from app.project.files.
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


class ProjectError(ValueError):
    """A project file or its masks cannot be read; the message is one line for the user."""


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
        doc = project_to_json(path, project, present, quality=named)
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


# -- loading -----------------------------------------------------------------------------------


def load_project(path: str | os.PathLike[str]) -> tuple[Project, MaskStore]:
    """Read and validate a project; every failure is a one-line `ProjectError`."""
    path = Path(path).absolute()
    try:
        doc = read_document(path)
        project = project_from_json(path, doc)
        masks = _load_masks(path, doc, project)
    except (InvalidProject, MaskFolderError) as exc:
        raise ProjectError(f"{path.name}: {exc}") from None
    return project, masks


def _load_masks(path: Path, doc: dict, project: Project) -> MaskStore:
    spec = get_field(doc, "masks", dict, "project")
    if get_field(spec, "chunk_frames", int, "masks") != CHUNK_FRAMES:
        raise InvalidProject(f"unsupported mask chunk size {spec['chunk_frames']}")
    index = chunk_index(spec, project.num_frames)
    masks = MaskStore(project.video_size, num_frames=project.num_frames)
    ids = {o.obj_id for o in project.objects}
    folder = mask_folder(path)
    load_chunks(folder, index, masks, ids, project.num_frames)
    load_quality(folder, spec, masks, ids, project.num_frames, store_target(folder))
    return masks
