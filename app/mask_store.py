"""Compact in-memory storage of binary masks per (frame, object), plus its chunk file codec.

Masks are kept run-length encoded, so memory grows with mask complexity rather than with
video length times resolution. Each entry also records whether the object was present:
an object the tracker predicted absent on a frame is stored as "absent", which is not the
same as a frame that was never computed ("none").

RLE format (`encode_rle`): the mask is flattened in row-major (C) order and stored as
little-endian uint32 run lengths, alternating background/foreground and always starting
with a background run (of length 0 when the first pixel is set). The runs sum to H * W.

Persistence works per chunk of `CHUNK_FRAMES` consecutive frames. Every change bumps the
revision of its chunk; a writer (the project file, the autosaver) remembers which revision
it last wrote per chunk under its own target name, so each one rewrites only what changed
since its own last write (`dirty_chunks` / `mark_clean`).

Chunk file format (`encode_chunk` / `decode_chunk`), all integers little-endian:
    header  : magic b"MKLC", u16 version (1), u16 reserved (0),
              u32 height, u32 width, u32 chunk index, u32 entry count
    entries : u32 frame, u32 obj_id, u32 flags (bit 0 = present), u32 byte count, RLE bytes
    trailer : u32 CRC-32 of everything before it
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from app.atomic import sweep_stale_temporaries, temp_name
from app.limits import MAX_FRAMES, check_frame_size
from app.quality import QualityTable, rle_stats

__all__ = [
    "CHUNK_FRAMES",
    "DEFAULT_MEMORY_BUDGET",
    "ChunkError",
    "MaskStore",
    "decode_chunk",
    "decode_rle",
    "encode_chunk",
    "encode_rle",
    "rle_pixel_count",
]

CHUNK_FRAMES = 256
DEFAULT_MEMORY_BUDGET = 256 * 2**20  # resident RLE bytes before chunks spill to disk
_MAX_KEY = 2**31 - 1  # frames and ids are uint32 in chunk files; keep them int32-safe too
_ABSENT = b""  # present masks always hold at least one run, so empty bytes is unambiguous
_CHUNK_MAGIC = b"MKLC"
_CHUNK_VERSION = 1
_HEADER = struct.Struct("<4sHHIIII")
_ENTRY = struct.Struct("<IIII")
_CRC = struct.Struct("<I")

Status = Literal["none", "present", "absent"]
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


class MaskStore:
    """RLE masks per (frame, obj_id) for one video of `video_size` (H, W).

    Memory stays bounded whatever the video's length: when the resident RLE data exceeds
    `memory_budget` bytes, the least recently used chunks are spilled to a private temporary
    folder (chunk file format) and reloaded on access. Only a small index (which entries
    exist, present or absent) stays in memory for spilled chunks, so `status`, `frames` and
    `len` never reload them. Not thread-safe: the owner (the annotation document, on the GUI
    thread) serialises access.
    """

    def __init__(
        self,
        video_size: tuple[int, int],
        *,
        num_frames: int | None = None,
        memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        height, width = (int(v) for v in video_size)
        check_frame_size(height, width, "video")
        if num_frames is not None and not 0 < num_frames <= MAX_FRAMES:
            raise ValueError(f"num_frames must be in 1-{MAX_FRAMES}, got {num_frames}")
        self._size = (height, width)
        self._num_frames = num_frames
        self._budget = memory_budget
        self._frames: dict[int, dict[int, bytes]] = {}  # resident chunks only
        self._resident_bytes = 0
        self._lru: OrderedDict[int, None] = OrderedDict()  # resident chunks, oldest first
        self._spilled: dict[int, dict[int, dict[int, bool]]] = {}  # chunk -> frame -> obj
        self._spilled_bytes: dict[int, int] = {}
        self._spill_dir: Path | None = None
        self._revision = 0
        self._chunk_rev: dict[int, int] = {}
        self._clean: dict[str, dict[int, int]] = {}
        # Confidence and shape figures per entry, kept in step with every store and clear.
        self.quality = QualityTable()

    @property
    def video_size(self) -> tuple[int, int]:
        """(H, W) of every mask."""
        return self._size

    @property
    def num_frames(self) -> int | None:
        return self._num_frames

    @property
    def nbytes(self) -> int:
        """Bytes of encoded mask data held, in memory or spilled."""
        return self._resident_bytes + sum(self._spilled_bytes.values())

    @property
    def resident_nbytes(self) -> int:
        """Bytes of encoded mask data in memory (bounded by `memory_budget` plus one chunk)."""
        return self._resident_bytes

    def is_resident(self, chunk: int) -> bool:
        return chunk not in self._spilled

    def __len__(self) -> int:
        resident = sum(len(objs) for objs in self._frames.values())
        return resident + sum(_index_len(idx) for idx in self._spilled.values())

    # -- editing -----------------------------------------------------------------------------

    def set(
        self, frame: int, obj_id: int, mask: np.ndarray | None, *, present: bool = True
    ) -> None:
        """Record the mask of `obj_id` on `frame`; `mask=None` or `present=False` means absent."""
        self._check_key(frame, obj_id)
        if mask is None or not present:
            data = _ABSENT
        else:
            if mask.shape != self._size:
                raise ValueError(f"mask shape {mask.shape} does not match video {self._size}")
            data = encode_rle(mask)
        self._store(frame, obj_id, data)

    def set_encoded(self, frame: int, obj_id: int, data: bytes, *, present: bool = True) -> None:
        """Store already-encoded RLE bytes (validated against the video size, not decoded)."""
        self._check_key(frame, obj_id)
        if present:
            total = rle_pixel_count(data)
            if total != self._size[0] * self._size[1]:
                raise ValueError(f"RLE covers {total} pixels, video is {self._size}")
        self._store(frame, obj_id, bytes(data) if present else _ABSENT)

    def clear_frame(self, frame: int, obj_id: int) -> None:
        """Forget the entry of `obj_id` on `frame` (back to status "none")."""
        if self.status(frame, obj_id) == "none":
            return
        objs = self._resident(frame)
        self._resident_bytes -= len(objs.pop(obj_id))
        self.quality.clear(frame, obj_id)
        if not objs:
            del self._frames[frame]
            chunk = frame // CHUNK_FRAMES
            start = chunk * CHUNK_FRAMES
            if not any(f in self._frames for f in range(start, start + CHUNK_FRAMES)):
                self._lru.pop(chunk, None)
        self._touch(frame)

    def remove_object(self, obj_id: int) -> None:
        """Forget every entry of `obj_id`."""
        for frame in self.frames(obj_id):
            self.clear_frame(frame, obj_id)
        self.quality.remove_object(obj_id)

    # -- queries -----------------------------------------------------------------------------

    def status(self, frame: int, obj_id: int) -> Status:
        index = self._spilled.get(frame // CHUNK_FRAMES)
        if index is not None:
            present = index.get(frame, {}).get(obj_id)
            return "none" if present is None else "present" if present else "absent"
        data = self._frames.get(frame, {}).get(obj_id)
        if data is None:
            return "none"
        return "absent" if data == _ABSENT else "present"

    def get(self, frame: int, obj_id: int) -> np.ndarray | None:
        """The (H, W) bool mask, or None when absent or never computed (see `status`)."""
        data = self.encoded(frame, obj_id)
        return None if data is None else decode_rle(data, self._size)

    def objects_at(self, frame: int) -> dict[int, np.ndarray]:
        """Decoded masks of the objects present on `frame`, by obj_id."""
        objs = self._resident(frame) if self._has_frame(frame) else {}
        return {oid: decode_rle(data, self._size) for oid, data in sorted(objs.items()) if data}

    def frames(self, obj_id: int) -> list[int]:
        """Sorted frames that hold an entry (present or absent) for `obj_id`."""
        out = [f for f, objs in self._frames.items() if obj_id in objs]
        for index in self._spilled.values():
            out.extend(f for f, objs in index.items() if obj_id in objs)
        return sorted(out)

    def object_ids(self) -> list[int]:
        ids = {oid for objs in self._frames.values() for oid in objs}
        for index in self._spilled.values():
            ids.update(oid for objs in index.values() for oid in objs)
        return sorted(ids)

    def encoded(self, frame: int, obj_id: int) -> bytes | None:
        """Raw RLE bytes of a present entry (for exporters that re-encode without decoding)."""
        if self.status(frame, obj_id) != "present":
            return None
        return self._resident(frame)[obj_id]

    # -- persistence hooks -------------------------------------------------------------------

    def chunks(self) -> list[int]:
        """Indices of chunks that currently hold at least one entry."""
        return sorted({f // CHUNK_FRAMES for f in self._frames} | self._spilled.keys())

    def chunk_entries(self, chunk: int) -> list[ChunkEntry]:
        """Every entry of one chunk as (frame, obj_id, present, rle bytes), sorted."""
        if chunk in self._spilled:
            self._load(chunk)
        start = chunk * CHUNK_FRAMES
        out: list[ChunkEntry] = []
        for frame in range(start, start + CHUNK_FRAMES):
            for oid, data in sorted(self._frames.get(frame, {}).items()):
                out.append((frame, oid, data != _ABSENT, data))
        return out

    def dirty_chunks(self, target: str = "project") -> list[int]:
        """Chunks changed since `mark_clean(target, ...)`; every touched chunk if never saved.

        A listed chunk may now be empty: its file should then be deleted.
        """
        clean = self._clean.get(target, {})
        return sorted(c for c, rev in self._chunk_rev.items() if clean.get(c) != rev)

    def is_tracked(self, target: str) -> bool:
        """Whether `target` has a baseline, i.e. `dirty_chunks(target)` is relative to a save."""
        return target in self._clean

    def chunk_revisions(self, chunks: Iterable[int] | None = None) -> dict[int, int]:
        """Current revision per chunk: capture it before writing, pass it to `mark_clean`."""
        wanted = self._chunk_rev.keys() if chunks is None else chunks
        return {c: self._chunk_rev[c] for c in wanted if c in self._chunk_rev}

    def mark_clean(self, target: str, revisions: dict[int, int]) -> None:
        """Record that `target` now holds the given chunk revisions on disk."""
        self._clean.setdefault(target, {}).update(revisions)

    def tracked_chunks(self, target: str) -> set[int]:
        """Chunks `target` was marked clean for: the chunk files it loaded or wrote."""
        return set(self._clean.get(target, {}))

    def forget_target(self, target: str) -> None:
        self._clean.pop(target, None)

    # -- internals ---------------------------------------------------------------------------

    def _store(self, frame: int, obj_id: int, data: bytes) -> None:
        chunk = frame // CHUNK_FRAMES
        if chunk in self._spilled:
            self._load(chunk)
        self._lru[chunk] = None
        self._lru.move_to_end(chunk)
        objs = self._frames.setdefault(frame, {})
        old = objs.get(obj_id)
        self._resident_bytes += len(data) - (0 if old is None else len(old))
        objs[obj_id] = data
        stats = rle_stats(data, self._size[1]) if data else (0.0, np.nan, np.nan)
        self.quality.record_mask(frame, obj_id, stats)
        self._touch(frame)
        self._evict(keep=chunk)

    def _has_frame(self, frame: int) -> bool:
        index = self._spilled.get(frame // CHUNK_FRAMES)
        return frame in self._frames if index is None else frame in index

    def _resident(self, frame: int) -> dict[int, bytes]:
        """The entries of a frame known to exist, reloading its chunk if it was spilled."""
        chunk = frame // CHUNK_FRAMES
        if chunk in self._spilled:
            self._load(chunk)
            self._evict(keep=chunk)
        self._lru.move_to_end(chunk)
        return self._frames[frame]

    def _evict(self, keep: int) -> None:
        if self._budget is None:
            return
        while self._resident_bytes > self._budget and len(self._lru) > 1:
            chunk = next(iter(self._lru))
            if chunk == keep:
                self._lru.move_to_end(chunk)
                continue
            try:
                self._spill(chunk)
            except OSError:
                # No room for the spill files: keep going in memory rather than lose edits.
                self._budget = None
                return

    def _spill(self, chunk: int) -> None:
        entries = self.chunk_entries(chunk)
        if self._spill_dir is None:
            # Named like every Masklet temporary, so a killed app's spill folder (possibly
            # GBs) is swept by the next one instead of filling the temp folder for good.
            tmp_root = Path(tempfile.gettempdir())
            sweep_stale_temporaries(tmp_root, force=False)
            self._spill_dir = tmp_root / temp_name("spill")
            self._spill_dir.mkdir(mode=0o700)
            weakref.finalize(self, shutil.rmtree, self._spill_dir, ignore_errors=True)
        (self._spill_dir / f"{chunk}.bin").write_bytes(encode_chunk(chunk, self._size, entries))
        index: dict[int, dict[int, bool]] = {}
        size = 0
        for frame, oid, present, data in entries:
            index.setdefault(frame, {})[oid] = present
            size += len(data)
            self._frames[frame].pop(oid)
            if not self._frames[frame]:
                del self._frames[frame]
        self._resident_bytes -= size
        self._spilled[chunk], self._spilled_bytes[chunk] = index, size
        del self._lru[chunk]

    def _load(self, chunk: int) -> None:
        assert self._spill_dir is not None
        blob = (self._spill_dir / f"{chunk}.bin").read_bytes()
        _, entries = decode_chunk(blob, self._size)
        del self._spilled[chunk]
        self._resident_bytes += self._spilled_bytes.pop(chunk)
        for frame, oid, _present, data in entries:
            self._frames.setdefault(frame, {})[oid] = data
        self._lru[chunk] = None

    def _touch(self, frame: int) -> None:
        self._revision += 1
        self._chunk_rev[frame // CHUNK_FRAMES] = self._revision

    def _check_key(self, frame: int, obj_id: int) -> None:
        if not _is_key(frame):
            raise ValueError(f"frame must be an int in 0-{_MAX_KEY}, got {frame!r}")
        if self._num_frames is not None and frame >= self._num_frames:
            raise ValueError(f"frame {frame} out of range (video has {self._num_frames})")
        if not _is_key(obj_id):
            raise ValueError(f"obj_id must be an int in 0-{_MAX_KEY}, got {obj_id!r}")


def _index_len(index: dict[int, dict[int, bool]]) -> int:
    return sum(len(objs) for objs in index.values())


def _is_key(value: object) -> bool:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return ok and 0 <= value <= _MAX_KEY


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
