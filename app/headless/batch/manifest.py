"""The manifest of `masklet batch`: JSON Lines, one video per line.

    {"video": "clips/a.mp4", "prompts": "clips/a.json"}
    {"video": "clips/b.mp4", "annotations": "labels/b.json", "id": "b-cam2", "direction": "both"}
    {"video": "clips/c.mp4", "find": ["person", "bicycle"], "find_every": 16}

Each line holds `video` and at most one of `prompts` (a prompts file of `masklet track`) or
`annotations` (COCO, YouTube-VIS or a DAVIS PNG folder, used as mask prompts), and/or `find`
(phrases SAM 3's finder finds, as `masklet track --find`; a list of strings, checked by
`app.headless.phrases.check_phrases`) with `find_every` (frames between finds while
tracking; default: `masklet batch --find-every`, else the first frame only); optionally `id`
(the output folder's name; default: the video's stem, made unique with `-2`, `-3`, ...) and
`direction` (forward, backward or both; default forward). Blank lines and lines starting with
`#` are skipped. Relative paths are relative to the manifest's folder.

The whole manifest is checked before any work starts, and every bad line is reported, one
line each naming its line number and field (`ManifestError.problems`). Only the manifest's
own structure is checked here: whether each file can be read is a question for the worker
that tracks it (on a cluster the paths are the workers'), and a failure there is that
video's, not the batch's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.headless.track_run import DIRECTIONS
from app.safety.limits import (
    MAX_FRAMES,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_LINE_BYTES,
    MAX_MANIFEST_VIDEOS,
)
from app.safety.safe_io import JsonError, parse_json, read_regular_file

__all__ = ["ManifestEntry", "ManifestError", "load_manifest", "parse_manifest"]

_KEYS = {"video", "prompts", "annotations", "id", "direction", "find", "find_every"}
# An id names a folder under --out: no separators, no leading dot (our temporaries and
# hidden files start with one), nothing a shell or another OS would trip over.
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]+")
_RESERVED_IDS = {"batch.jsonl", "failures.jsonl"}
_MAX_PROBLEMS = 50  # reported; a manifest of a million bad lines needs no million lines


class ManifestError(ValueError):
    """The manifest cannot be run; `problems` holds one line per bad entry."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        self.total = total = len(problems) if total is None else total
        more = f" (and {total - len(problems)} more)" if total > len(problems) else ""
        super().__init__(f"{problems[0]}{more}" if total == 1 else f"{total} bad entries{more}")


@dataclass(frozen=True)
class ManifestEntry:
    """One video of the batch; `line` is its 1-based line number in the manifest."""

    line: int
    id: str
    video: Path
    prompts: Path | None
    annotations: Path | None
    direction: str
    find: tuple[str, ...] = ()
    find_every: int | None = None


def load_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read and check a manifest file; ManifestError (or OSError) when it cannot run."""
    path = Path(path)
    try:
        raw = read_regular_file(path, max_bytes=MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise ManifestError([f"cannot read manifest {path}: {exc.strerror or exc}"]) from None
    return parse_manifest(raw, name=path.name, base=path.parent)


def parse_manifest(raw: bytes, *, name: str, base: Path) -> list[ManifestEntry]:
    """The entries of a manifest's bytes; every bad line is one of ManifestError.problems."""
    problems: list[str] = []
    fields: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            fields.append((number, _parse_line(line)))
        except ValueError as exc:
            problems.append(f"{name} line {number}: {exc}")
    if len(fields) > MAX_MANIFEST_VIDEOS:
        problems.insert(0, f"{name}: {len(fields)} videos, over the limit of {MAX_MANIFEST_VIDEOS}")
    entries = _with_ids(fields, base, name, problems)
    if not problems and not entries:
        problems.append(f"{name}: lists no videos")
    if problems:
        raise ManifestError(problems[:_MAX_PROBLEMS], total=len(problems))
    return entries


def _parse_line(line: bytes) -> dict[str, Any]:
    """The checked fields of one line; ValueError naming the field otherwise."""
    if len(line) > MAX_MANIFEST_LINE_BYTES:
        raise ValueError(f"{len(line)} bytes, over the limit of {MAX_MANIFEST_LINE_BYTES}")
    try:
        data = parse_json(line)
    except JsonError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object like {"video": ..., "prompts": ...}')
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    for key in ("video", "prompts", "annotations"):
        if key in data and not _is_path(data[key]):
            raise ValueError(f"{key}: expected a path, got {_show(data[key])}")
    if "video" not in data:
        raise ValueError("video: missing")
    if "prompts" in data and "annotations" in data:
        raise ValueError("needs at most one of 'prompts' or 'annotations'")
    if "find" in data:
        data["find"] = _phrases(data["find"])
    elif "find_every" in data:
        raise ValueError("find_every: needs 'find'")
    if not ({"prompts", "annotations", "find"} & data.keys()):
        raise ValueError("needs 'prompts', 'annotations' or 'find'")
    every = data.get("find_every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= MAX_FRAMES:
        raise ValueError(
            f"find_every: expected a number of frames in 1-{MAX_FRAMES}, got {_show(every)}"
        )
    if "id" in data and not (isinstance(data["id"], str) and _ID_RE.match(data["id"])):
        raise ValueError(
            f"id: expected 1-128 letters, digits or _.+=- not starting with '.' or '-', "
            f"got {_show(data['id'])}"
        )
    if data.get("id") in _RESERVED_IDS:
        raise ValueError(f"id: {data['id']!r} is the name of a batch log")
    if data.get("direction", "forward") not in DIRECTIONS:
        raise ValueError(
            f"direction: expected one of {', '.join(DIRECTIONS)}, got {_show(data['direction'])}"
        )
    return data


def _phrases(value: Any) -> tuple[str, ...]:
    """The `find` field: a non-empty list of checked phrases."""
    from app.headless.phrases import check_phrases

    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f'find: expected a list of phrases like ["person"], got {_show(value)}')
    try:
        return tuple(check_phrases(value))
    except ValueError as exc:
        raise ValueError(f"find: {exc}") from None


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and "\0" not in value


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_ids(
    fields: list[tuple[int, dict[str, Any]]], base: Path, name: str, problems: list[str]
) -> list[ManifestEntry]:
    """Entries with their ids: given ids must be unique; default ids are made unique."""
    given: dict[str, int] = {}
    for number, data in fields:
        if "id" in data:
            if data["id"] in given:
                problems.append(
                    f"{name} line {number}: id: {data['id']!r} is already used on line "
                    f"{given[data['id']]}"
                )
            given.setdefault(data["id"], number)
    taken = set(given)
    entries = []
    for number, data in fields:
        video = base / data["video"]
        entry_id = data.get("id") or _unique(_default_id(video), taken)
        prompts, annotations = data.get("prompts"), data.get("annotations")
        entries.append(
            ManifestEntry(
                line=number,
                id=entry_id,
                video=video,
                prompts=None if prompts is None else base / prompts,
                annotations=None if annotations is None else base / annotations,
                direction=data.get("direction", "forward"),
                find=data.get("find", ()),
                find_every=data.get("find_every"),
            )
        )
    return entries


def _default_id(video: Path) -> str:
    """The video's stem (a folder's name), cut down to the characters an id may hold."""
    stem = video.stem if video.suffix else video.name
    text = _UNSAFE.sub("_", stem).lstrip(".-")[:100]
    return text if text and text not in _RESERVED_IDS else "video"


def _unique(stem: str, taken: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate
