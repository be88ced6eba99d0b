"""The on-disk and packed forms of masks: run-length encoding and the chunk file format.

RLE format (`encode_rle`): the mask is flattened in row-major (C) order and stored as
little-endian uint32 run lengths, alternating background/foreground and always starting
with a background run (of length 0 when the first pixel is set). The runs sum to H * W.

Masks are saved (and spilled, see app/project/mask_store.py) per chunk of `CHUNK_FRAMES`
consecutive frames. Chunk file format (`encode_chunk` / `decode_chunk`), all integers
little-endian:
    header  : magic b"MKLC", u16 version (1), u16 reserved (0),
              u32 height, u32 width, u32 chunk index, u32 entry count
    entries : u32 frame, u32 obj_id, u32 flags (bit 0 = present), u32 byte count, RLE bytes
    trailer : u32 CRC-32 of everything before it
An absent entry (the object was predicted absent on that frame) carries no bytes.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = [
    "CHUNK_FRAMES",
    "ChunkEntry",
    "ChunkError",
    "decode_chunk",
    "decode_rle",
    "encode_chunk",
    "encode_rle",
    "rle_pixel_count",
]

CHUNK_FRAMES = 256
_CHUNK_MAGIC = b"MKLC"
_CHUNK_VERSION = 1
_HEADER = struct.Struct("<4sHHIIII")
_ENTRY = struct.Struct("<IIII")
_CRC = struct.Struct("<I")

ChunkEntry = tuple[int, int, bool, bytes]  # (frame, obj_id, present, rle bytes)


class ChunkError(ValueError):
    """A chunk file is truncated, damaged or inconsistent with the video."""


def encode_rle(mask: np.ndarray) -> bytes:
    """Run-length encode a 2-D boolean mask (row-major, uint32 runs, background first)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    flat = np.ascontiguousarray(mask, dtype=bool).reshape(-1)
    if flat.size == 0:
        raise ValueError("mask must not be empty")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype("<u4").tobytes()


def rle_pixel_count(data: bytes) -> int:
    """Number of pixels an RLE blob covers; raises ValueError if it is not whole uint32s."""
    if len(data) % 4 or not data:
        raise ValueError(f"RLE data of {len(data)} bytes is not a non-empty uint32 array")
    return int(np.frombuffer(data, dtype="<u4").sum(dtype=np.uint64))


def decode_rle(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of `encode_rle`: an (H, W) bool mask; ValueError if the runs don't fit `shape`."""
    height, width = shape
    total = rle_pixel_count(data)
    if total != height * width:
        raise ValueError(f"RLE covers {total} pixels but the mask is {height}x{width}")
    runs = np.frombuffer(data, dtype="<u4")
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(height, width)


def encode_chunk(chunk: int, video_size: tuple[int, int], entries: list[ChunkEntry]) -> bytes:
    """Serialise one chunk's entries (see the module docstring for the layout)."""
    parts = [_HEADER.pack(_CHUNK_MAGIC, _CHUNK_VERSION, 0, *video_size, chunk, len(entries))]
    for frame, obj_id, present, data in entries:
        parts.append(_ENTRY.pack(frame, obj_id, int(present), len(data)))
        parts.append(data)
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode_chunk(blob: bytes, video_size: tuple[int, int]) -> tuple[int, list[ChunkEntry]]:
    """Parse and verify a chunk file; raises ChunkError with the reason on any damage."""
    if len(blob) < _HEADER.size + _CRC.size:
        raise ChunkError(f"truncated ({len(blob)} bytes)")
    # A view, not a copy: a chunk may be a GiB, and only the entries' bytes need copying.
    view = memoryview(blob)
    body, (crc,) = view[: -_CRC.size], _CRC.unpack(view[-_CRC.size :])
    magic, version, _, height, width, chunk, count = _HEADER.unpack_from(body)
    if magic != _CHUNK_MAGIC:
        raise ChunkError("not a Masklet mask chunk")
    if version != _CHUNK_VERSION:
        raise ChunkError(f"unsupported chunk version {version}")
    if zlib.crc32(body) != crc:
        raise ChunkError("checksum mismatch (damaged or truncated)")
    if (height, width) != tuple(video_size):
        video = f"{video_size[0]}x{video_size[1]}"
        raise ChunkError(f"masks are {height}x{width} but the video is {video}")
    room = (len(body) - _HEADER.size) // _ENTRY.size
    if count > room:
        raise ChunkError(f"declares {count} entries but has room for at most {room}")
    entries = _decode_entries(body, count, height * width)
    lo, hi = chunk * CHUNK_FRAMES, (chunk + 1) * CHUNK_FRAMES
    for frame, *_ in entries:
        if not lo <= frame < hi:
            raise ChunkError(f"frame {frame} does not belong to chunk {chunk}")
    return chunk, entries


def _decode_entries(body: memoryview, count: int, pixels: int) -> list[ChunkEntry]:
    entries: list[ChunkEntry] = []
    pos = _HEADER.size
    for _ in range(count):
        if pos + _ENTRY.size > len(body):
            raise ChunkError("entry table runs past the end of the file")
        frame, obj_id, flags, size = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        data = bytes(body[pos : pos + size])
        if len(data) != size:
            raise ChunkError(f"mask of frame {frame} object {obj_id} is truncated")
        pos += size
        present = bool(flags & 1)
        if present:
            try:
                covered = rle_pixel_count(data)
            except ValueError as exc:
                raise ChunkError(f"frame {frame} object {obj_id}: {exc}") from None
            if covered != pixels:
                raise ChunkError(f"frame {frame} object {obj_id}: mask size does not match video")
        elif size:
            raise ChunkError(f"frame {frame} object {obj_id}: absent entry carries data")
        entries.append((frame, obj_id, present, data))
    if pos != len(body):
        raise ChunkError(f"{len(body) - pos} unexpected trailing bytes")
    return entries
