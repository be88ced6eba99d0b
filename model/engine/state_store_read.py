"""Reading a state store's index back: validated field by field, then turned into tracks.

Everything in the index is untrusted: each field's type and range is checked, every file
named must exist with exactly the size the index and layout give it, and files are read
with a bounded size and checked against their CRC-32. Only the small parts (prompts,
packed masks, stashed outputs) are read here; outputs' tensors are read on first use.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.engine.mask_store import PackedMask
from model.engine.memory_bank import FrameOutput, ObjectTrack, Tensors
from model.engine.state_store import Layout, StateStoreError, file_size, read_checked
from model.sam2.types import PointInputs

_FILE_RE = re.compile(r"^[ems]-[0-9a-f]{1,32}\.bin$")
_MAX_OBJECTS = 10_000
_MAX_POINTS = 10_000
_MAX_ID = 2**31 - 1
_NO_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class RestoreReport:
    objects: int
    outputs: int
    retrack: int  # frames whose state was dropped: the next propagation re-tracks them
    bytes: int


class _Bad(Exception):
    pass


def _int(value: object, hi: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < hi:
        raise _Bad(f"{what} is not an int in [0, {hi})")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{what} is not a number")
    return float(value)


def _list(value: object, what: str, limit: int = _NO_LIMIT) -> list:
    if not isinstance(value, list) or len(value) > limit:
        raise _Bad(f"{what} is not a list (of at most {limit})")
    return value


def _file_entry(value: object, n: int, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is not an object")
    name = value.get("file")
    if not isinstance(name, str) or not _FILE_RE.match(name):
        raise _Bad(f"{what} names no valid file")
    out = dict(value)
    out["frame"] = _int(value.get("frame"), n, f"{what}'s frame")
    out["crc"] = _int(value.get("crc"), 2**32, f"{what}'s crc")
    out["size"] = _int(value.get("size"), 2**40, f"{what}'s size")
    return out


def _object(obj: object, n: int, i: int) -> dict[str, Any]:
    where = f"object {i}"
    if not isinstance(obj, dict):
        raise _Bad(f"{where} is not an object")
    parsed: dict[str, Any] = {"id": _int(obj.get("id"), _MAX_ID, f"{where}'s id")}
    for key in ("masks", "outputs", "stash"):
        items = _list(obj.get(key), f"{where}'s {key}")
        parsed[key] = [_file_entry(e, n, f"{where}'s {key}[{j}]") for j, e in enumerate(items)]
    for e in parsed["outputs"]:
        e["is_cond"] = e.get("is_cond") is True
        e["score"] = _number(e.get("score"), f"{where}'s score")
        e["iou"] = _number(e.get("iou"), f"{where}'s iou")
        shape = _list(e.get("mask_shape"), f"{where}'s mask shape", 2)
        e["mask_shape"] = tuple(_int(v, 1 << 16, "a mask size") for v in shape)
        e["mask_bytes"] = _int(e.get("mask_bytes"), 1 << 32, "a mask's byte count")
        e["mask_crc"] = _int(e.get("mask_crc"), 2**32, "a mask's crc")
    for e in parsed["stash"]:
        e["iou"] = _number(e.get("iou"), f"{where}'s stash iou")
    points = []
    for j, p in enumerate(_list(obj.get("points"), f"{where}'s points")):
        if not isinstance(p, dict):
            raise _Bad(f"{where}'s points[{j}] is not an object")
        coords = _list(p.get("coords"), "clicks", _MAX_POINTS)
        labels = _list(p.get("labels"), "click labels", _MAX_POINTS)
        ok = len(coords) == len(labels) > 0 and all(
            isinstance(c, list) and len(c) == 2 for c in coords
        )
        if not ok:
            raise _Bad(f"{where}'s points[{j}] are malformed")
        xy = [[_number(v, "a click") for v in c] for c in coords]
        if not all(math.isfinite(v) for c in xy for v in c):
            raise _Bad(f"{where}'s points[{j}] are not finite")
        labels = [_int(v, 4, "a click label") for v in labels]
        points.append((_int(p.get("frame"), n, "a click frame"), xy, labels))
    parsed["points"] = points
    for key in ("pending", "dirty_forward", "dirty_backward"):
        parsed[key] = {_int(f, n, f"{where}'s {key}") for f in _list(obj.get(key), key)}
    for key in ("tracked", "dropped"):
        pairs = _list(obj.get(key), key)
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[1], bool) for p in pairs):
            raise _Bad(f"{where}'s {key} is malformed")
        parsed[key] = [(_int(f, n, f"{where}'s {key}"), r) for f, r in pairs]
    return parsed


def parse_objects(doc: dict, num_frames: int | None) -> list[dict[str, Any]]:
    """The index's objects, validated; StateStoreError naming the first bad field."""
    n = _NO_LIMIT if num_frames is None else num_frames
    try:
        objects = _list(doc.get("objects"), "objects", _MAX_OBJECTS)
        parsed = [_object(obj, n, i) for i, obj in enumerate(objects)]
    except _Bad as exc:
        raise StateStoreError(f"the saved engine state is damaged: {exc}") from None
    if len({o["id"] for o in parsed}) != len(parsed):
        raise StateStoreError("the saved engine state is damaged: an object id repeats")
    return parsed


class _Loader:
    """Reads one output's tensors from its store file when the session first needs them."""

    def __init__(self, path: Path, layout: Layout, size: int, crc: int, memory: bool) -> None:
        self.path, self.layout, self.size, self.crc, self.memory = path, layout, size, crc, memory

    def __call__(self, device: torch.device) -> Tensors:
        data = read_checked(self.path, self.size, self.crc)
        return self.layout.decode(data, device, with_memory=self.memory)


def build_tracks(
    folder: Path,
    doc: dict,
    layout: Layout | None,
    *,
    num_frames: int,
    video_size: tuple[int, int],
    image_size: int,
    device: torch.device,
) -> tuple[dict[int, ObjectTrack], RestoreReport]:
    """The tracks a store holds for a session of this video, model size and device."""
    objects = parse_objects(doc, num_frames)
    tracks: dict[int, ObjectTrack] = {}
    total, outputs, retrack = 0, 0, 0
    for obj in objects:
        track = ObjectTrack()
        for frame, xy, labels in obj["points"]:
            track.points[frame] = PointInputs(
                coords=torch.tensor(xy, dtype=torch.float32)[None].to(device),
                labels=torch.tensor(labels, dtype=torch.int32)[None].to(device),
            )
        s = image_size
        for e in obj["masks"]:
            data = _read_whole(folder, e, s * s * 4)
            mask = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(1, 1, s, s)
            track.masks[e["frame"]] = mask.to(device)
        for e in obj["outputs"]:
            if layout is None:
                raise StateStoreError("the saved engine state is damaged: it has no layout")
            memory = e["frame"] not in obj["pending"]
            tensor_bytes = layout.nbytes(with_memory=memory)
            path = _checked_path(folder, e, tensor_bytes + e["mask_bytes"])
            if e["mask_shape"] != tuple(video_size):
                raise StateStoreError("the saved engine state is for another video size")
            data = read_checked(path, e["mask_bytes"], e["mask_crc"], offset=tensor_bytes)
            track.outputs[e["frame"]] = FrameOutput(
                mask=inflate_mask(data, e["mask_shape"]),
                score=e["score"],
                iou=e["iou"],
                is_cond=e["is_cond"],
                token=e["file"][2:-4],
                loader=_Loader(path, layout, tensor_bytes, e["crc"], memory),
            )
        _restore_marks(track, obj, layout, folder, device)
        tracks[obj["id"]] = track
        outputs += len(obj["outputs"])
        retrack += len(obj["dropped"])
        total += sum(e["size"] for key in ("masks", "outputs", "stash") for e in obj[key])
    report = RestoreReport(objects=len(tracks), outputs=outputs, retrack=retrack, bytes=total)
    return tracks, report


def inflate_mask(data: bytes, shape: tuple[int, int]) -> PackedMask:
    """A stored packed mask, refusing data that does not inflate to exactly H x W bits."""
    h, w = shape
    expected = (h * w + 7) // 8
    inflater = zlib.decompressobj()
    try:
        bits = inflater.decompress(data, expected + 1)
    except zlib.error as exc:
        raise StateStoreError("a saved mask is damaged") from exc
    if len(bits) != expected or not inflater.eof:
        raise StateStoreError("a saved mask does not match its size")
    return PackedMask(shape=(h, w), data=data)


def _restore_marks(
    track: ObjectTrack, obj: dict, layout: Layout | None, folder: Path, device: torch.device
) -> None:
    if not obj["pending"] <= set(track.outputs):
        raise StateStoreError("the saved engine state is damaged: a pending frame has no output")
    track.pending = set(obj["pending"])
    for e in obj["stash"]:
        if e["frame"] not in track.pending or layout is None:
            raise StateStoreError("the saved engine state is damaged: a stray stashed output")
        memory = e.get("has_memory") is True
        data = _read_whole(folder, e, layout.nbytes(with_memory=memory))
        tensors = layout.decode(data, device, with_memory=memory)
        track.stash[e["frame"]] = (e.get("is_cond") is True, tensors, e["iou"])
    track.tracked = dict(obj["tracked"])
    track.dirty = {False: set(obj["dirty_forward"]), True: set(obj["dirty_backward"])}
    for frame, reverse in obj["dropped"]:
        # Its saved state is gone: the next local propagation recomputes from here.
        track.dirty[reverse].add(frame)


def _checked_path(folder: Path, entry: dict, expected: int) -> Path:
    path = folder / entry["file"]
    if entry["size"] != expected or file_size(path) != expected:
        raise StateStoreError(
            f"the saved engine state is damaged: {entry['file']} has the wrong size"
        )
    return path


def _read_whole(folder: Path, entry: dict, expected: int) -> bytes:
    return read_checked(_checked_path(folder, entry, expected), expected, entry["crc"])
