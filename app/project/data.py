"""The project as the app holds it: its objects, the user's prompts and the video's facts.

Plain dataclasses with no I/O: app/project/format.py gives them their JSON form and
app/project/files.py saves and loads them with their masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.project.labels import Label

__all__ = ["MAX_ID", "FramePrompt", "ObjectInfo", "Project"]

MAX_ID = 2**31 - 1  # ids and frames are stored as uint32 in chunk files


@dataclass
class ObjectInfo:
    obj_id: int
    name: str
    category: str
    color: tuple[int, int, int]
    visible: bool = True
    # The finder's score for an object found by phrase (app/project/found.py); None otherwise.
    finder_score: float | None = None


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
    # The label list, in the user's order; every object's category is one of them.
    labels: tuple[Label, ...] = ()
