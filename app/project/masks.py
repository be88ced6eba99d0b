"""The mask sidecar folder of a project (`NAME.masklet-masks/`): writing, pruning, loading.

The project JSON lists the chunks it owns (`"masks": {"chunks": [0, 3, ...]}`). That list
is what makes the folder safe to share with anything else:

* saving writes only our chunk files, never through a symlinked folder (refused), and
  deletes only chunk files that the previous project file listed or that this store
  loaded or wrote there: a `chunk-*.bin` someone else put in the folder is left alone;
* loading reads only the listed chunks (project files from before the list existed:
  every `chunk-NNNNNN.bin`), each a regular file under `MAX_CHUNK_BYTES`, so a FIFO or a
  link to `/dev/zero` is refused instead of hanging or filling memory.

Order for crash safety: chunks are written, then the JSON listing them, and only then are
chunks that dropped out of the list deleted. A kill between any two steps leaves a JSON
whose listed chunks all exist.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from app.project.mask_codec import CHUNK_FRAMES, ChunkError, decode_chunk, encode_chunk
from app.project.mask_store import MaskStore
from app.safety.atomic import atomic_write_bytes
from app.safety.limits import MAX_CHUNK_BYTES
from app.safety.safe_io import read_regular_file

__all__ = [
    "MaskFolderError",
    "check_writable_folder",
    "chunk_index",
    "delete_chunks",
    "listed_chunks",
    "load_chunks",
    "store_target",
    "write_chunks",
]

_CHUNK_RE = re.compile(r"^chunk-(\d{6})\.bin$")


class MaskFolderError(ValueError):
    """A chunk file or the chunk list is missing, damaged or inconsistent, or the folder
    cannot be written safely (one line)."""


def store_target(folder: Path) -> str:
    """The `MaskStore` dirty-tracking name of a mask folder."""
    return f"project:{os.path.normcase(folder.resolve())}"


def chunk_path(folder: Path, chunk: int) -> Path:
    return folder / f"chunk-{chunk:06d}.bin"


# -- saving ------------------------------------------------------------------------------------


def check_writable_folder(folder: Path) -> None:
    """Refuse to write into `folder` through a symbolic link (it would write, and delete,
    wherever the link points); create it if missing."""
    if folder.is_symlink():
        raise MaskFolderError(
            f"cannot save into {folder}: it is a symbolic link and Masklet never writes "
            "through one; save the project under another name"
        )
    folder.mkdir(exist_ok=True)


def write_chunks(folder: Path, masks: MaskStore, chunks: Iterable[int]) -> None:
    """Write every non-empty chunk of `chunks` (each file replaced atomically)."""
    for chunk in chunks:
        entries = masks.chunk_entries(chunk)
        if entries:
            data = encode_chunk(chunk, masks.video_size, entries)
            atomic_write_bytes(chunk_path(folder, chunk), data)


def delete_chunks(folder: Path, chunks: Iterable[int]) -> None:
    """Delete the given chunk files (ours by the caller's records); a link is removed as a
    link, never what it points to."""
    for chunk in sorted(chunks):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(chunk_path(folder, chunk))


def listed_chunks(doc: object) -> set[int]:
    """The chunk list of an earlier project file's JSON, or nothing if it has none."""
    spec = doc.get("masks") if isinstance(doc, dict) else None
    chunks = spec.get("chunks") if isinstance(spec, dict) else None
    if not isinstance(chunks, list):
        return set()
    return {c for c in chunks if isinstance(c, int) and not isinstance(c, bool) and c >= 0}


# -- loading -----------------------------------------------------------------------------------


def chunk_index(spec: dict, num_frames: int) -> list[int] | None:
    """Validate the JSON's chunk list; None for project files written before it existed."""
    if "chunks" not in spec:
        return None
    chunks = spec["chunks"]
    last = (num_frames - 1) // CHUNK_FRAMES
    if not isinstance(chunks, list):
        raise MaskFolderError("masks.chunks must be a list of chunk numbers")
    for c in chunks:
        if not (isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= last):
            raise MaskFolderError(
                f"masks.chunks entry {c!r} is not a chunk of a {num_frames}-frame video"
            )
    if len(set(chunks)) != len(chunks):
        raise MaskFolderError("masks.chunks lists a chunk twice")
    return sorted(chunks)


def load_chunks(
    folder: Path, index: list[int] | None, masks: MaskStore, ids: set[int], num_frames: int
) -> None:
    """Fill `masks` from the listed chunk files (every chunk file when `index` is None)."""
    if index is None:
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return  # an old project without any mask yet has no sidecar
        except OSError as exc:
            raise MaskFolderError(f"cannot list {folder.name} ({exc.strerror or exc})") from None
        index = [int(m.group(1)) for m in map(_CHUNK_RE.match, names) if m]
    for chunk in index:
        _load_chunk(chunk_path(folder, chunk), chunk, masks, ids, num_frames)
    masks.mark_clean(store_target(folder), masks.chunk_revisions())


def _load_chunk(path: Path, index: int, masks: MaskStore, ids: set[int], num_frames: int) -> None:
    where = f"mask file {path.parent.name}/{path.name}"
    try:
        chunk, entries = decode_chunk(
            read_regular_file(path, max_bytes=MAX_CHUNK_BYTES), masks.video_size
        )
    except ChunkError as exc:
        raise MaskFolderError(f"{where} is damaged: {exc}") from None
    except FileNotFoundError:
        raise MaskFolderError(f"{where} is missing") from None
    except OSError as exc:
        raise MaskFolderError(f"cannot read {where} ({exc.strerror or exc})") from None
    if chunk != index:
        raise MaskFolderError(f"{where} holds chunk {chunk}, not {index}")
    for frame, obj_id, present, data in entries:
        if frame >= num_frames:
            raise MaskFolderError(
                f"{where} has frame {frame} beyond the video ({num_frames} frames)"
            )
        if obj_id not in ids:
            raise MaskFolderError(f"{where} has masks of unknown object {obj_id}")
        masks.set_encoded(frame, obj_id, data, present=present)
