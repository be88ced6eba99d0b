"""Compact in-memory storage of binary masks per (frame, object): the `MaskStore` API.

Masks are kept run-length encoded (format in app/project/mask_codec.py), so memory grows with mask
complexity rather than with video length times resolution. Each entry also records whether
the object was present: an object the tracker predicted absent on a frame is stored as
"absent", which is not the same as a frame that was never computed ("none").

Persistence works per chunk of `CHUNK_FRAMES` consecutive frames. Every change bumps the
revision of its chunk; a writer (the project file, the autosaver) remembers which revision
it last wrote per chunk under its own target name, so each one rewrites only what changed
since its own last write (`dirty_chunks` / `mark_clean`). Chunks over the memory budget
spill to temporary chunk files (app/project/mask_codec.py's format) and reload on access.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from app.project.mask_codec import (
    CHUNK_FRAMES,
    ChunkEntry,
    decode_chunk,
    decode_rle,
    encode_chunk,
    encode_rle,
    rle_pixel_count,
)
from app.project.quality import QualityTable, rle_stats
from app.safety.atomic import sweep_stale_temporaries, temp_name
from app.safety.limits import MAX_FRAMES, check_frame_size

__all__ = ["DEFAULT_MEMORY_BUDGET", "MaskStore", "Status"]

DEFAULT_MEMORY_BUDGET = 256 * 2**20  # resident RLE bytes before chunks spill to disk
_MAX_KEY = 2**31 - 1  # frames and ids are uint32 in chunk files; keep them int32-safe too
_ABSENT = b""  # present masks always hold at least one run, so empty bytes is unambiguous

Status = Literal["none", "present", "absent"]


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

    def copy(self) -> MaskStore:
        """An independent store with the same entries and quality figures.

        For readers on another thread (an export) while the owner keeps editing. Copying
        entry by entry would record each mask anew and leave its predicted IoU unknown, so
        the figures are copied with the masks, never rebuilt."""
        out = MaskStore(self._size, num_frames=self._num_frames, memory_budget=self._budget)
        for chunk in self.chunks():
            for frame, obj_id, present, data in self.chunk_entries(chunk):
                out.set_encoded(frame, obj_id, data, present=present)
        out.quality = self.quality.copy()
        return out

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
