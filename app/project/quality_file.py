"""The confidence figures of a project: `NAME.masklet-masks/quality.bin`.

Holds the engine's predicted IoU and object-score logit per (object, frame) (see
app/project/quality.py); areas and centroids are not stored, they are recomputed from the masks
as the chunks load. The project JSON names the file (`"masks": {"quality": "quality.bin"}`);
projects without that key (older ones) load with every figure unknown.

File format, all little-endian:
    header  : magic b"MKLQ", u16 version (1), u16 reserved (0), u32 frames per block (256),
              u32 entry count
    entries : u32 obj_id, u32 block index, (256, 2) float32 rows of (iou, score), NaN = unknown
    trailer : u32 CRC-32 of everything before it

The file is replaced atomically, before the JSON that names it. Reading is bounded by what
the project can hold (objects x blocks) and never fails the project: a damaged, oversized
or foreign file only leaves the figures unknown, and out-of-range values become unknown.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from app.project.mask_store import MaskStore
from app.project.quality import BLOCK, IOU, SCORE, QualityTable
from app.safety.atomic import atomic_write_bytes
from app.safety.limits import MAX_CHUNK_BYTES
from app.safety.safe_io import read_regular_file

__all__ = ["QUALITY_FILE", "QualityFileError", "decode_quality", "encode_quality"]

QUALITY_FILE = "quality.bin"
_MAGIC = b"MKLQ"
_VERSION = 1
_HEADER = struct.Struct("<4sHHII")
_ENTRY = struct.Struct("<II")
_ROWS = BLOCK * 2 * 4  # bytes of one block's (iou, score) rows
_CRC = struct.Struct("<I")
# Predicted IoUs lie in [0, 1] give or take the head's rounding; logits are tens at most.
_IOU_RANGE = (-1.0, 2.0)
_MAX_SCORE = 1e6


class QualityFileError(ValueError):
    """quality.bin is damaged or does not belong to this project."""


def encode_quality(table: QualityTable) -> bytes:
    """Every block that holds at least one known IoU or score."""
    parts = []
    for obj_id in table.object_ids():
        for block, rows in table.blocks(obj_id):
            figures = rows[:, IOU : SCORE + 1]
            if np.isfinite(figures).any():
                parts.append(_ENTRY.pack(obj_id, block))
                parts.append(np.ascontiguousarray(figures, dtype="<f4").tobytes())
    body = _HEADER.pack(_MAGIC, _VERSION, 0, BLOCK, len(parts) // 2) + b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode_quality(
    blob: bytes, ids: set[int], num_frames: int
) -> list[tuple[int, int, np.ndarray]]:
    """(obj_id, block, (BLOCK, 2) float32) entries; unknown objects and blocks past the
    video are dropped, implausible values become NaN. QualityFileError on any damage."""
    if len(blob) < _HEADER.size + _CRC.size:
        raise QualityFileError(f"truncated ({len(blob)} bytes)")
    view = memoryview(blob)
    body, (crc,) = view[: -_CRC.size], _CRC.unpack(view[-_CRC.size :])
    magic, version, _, block_frames, count = _HEADER.unpack_from(body)
    if magic != _MAGIC or version != _VERSION or block_frames != BLOCK:
        raise QualityFileError("not a Masklet quality file of version 1")
    if zlib.crc32(body) != crc:
        raise QualityFileError("checksum mismatch (damaged or truncated)")
    if len(body) != _HEADER.size + count * (_ENTRY.size + _ROWS):
        raise QualityFileError(f"declares {count} entries but holds {len(body)} bytes")
    blocks = -(-num_frames // BLOCK)
    entries = []
    pos = _HEADER.size
    for _ in range(count):
        obj_id, block = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        rows = np.frombuffer(body, dtype="<f4", count=BLOCK * 2, offset=pos).reshape(BLOCK, 2)
        pos += _ROWS
        if obj_id in ids and block < blocks:
            entries.append((obj_id, block, _sanitised(rows)))
    return entries


def _sanitised(rows: np.ndarray) -> np.ndarray:
    out = rows.astype(np.float32)  # a writable copy
    iou, score = out[:, 0], out[:, 1]
    with np.errstate(invalid="ignore"):
        iou[~((iou >= _IOU_RANGE[0]) & (iou <= _IOU_RANGE[1]))] = np.nan
        score[~(np.abs(score) <= _MAX_SCORE)] = np.nan
    return out


def write_quality(folder: Path, masks: MaskStore, target: str, *, full: bool, named: bool) -> None:
    """Rewrite quality.bin unless nothing changed since the last write to `target`.

    `named`: whether the JSON names the file (`has_figures()`). When it does not, a file
    this store wrote or loaded there is deleted, never a stranger's.
    """
    table = masks.quality
    if not named:
        if table.saved.pop(target, None) is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / QUALITY_FILE)
        return
    if not full and table.saved.get(target) == table.revision:
        return
    revision = table.revision
    atomic_write_bytes(folder / QUALITY_FILE, encode_quality(table))
    table.saved[target] = revision


def load_quality(
    folder: Path, spec: dict, masks: MaskStore, ids: set[int], num_frames: int, target: str
) -> None:
    """Fill `masks.quality` from the file the JSON names; anything unreadable is skipped."""
    if spec.get("quality") != QUALITY_FILE:
        return
    blocks = -(-num_frames // BLOCK)
    limit = min(MAX_CHUNK_BYTES, 64 + len(ids) * blocks * (_ENTRY.size + _ROWS))
    try:
        blob = read_regular_file(folder / QUALITY_FILE, max_bytes=limit)
        entries = decode_quality(blob, ids, num_frames)
    except (OSError, ValueError):
        return
    for obj_id, block, rows in entries:
        masks.quality.set_block(obj_id, block, rows)
    masks.quality.saved[target] = masks.quality.revision
