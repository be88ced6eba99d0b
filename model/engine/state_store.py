"""The on-disk engine state store: a folder of raw tensor files plus one JSON index.

Beside a project `NAME.masklet`, the folder `NAME.masklet-state/` holds::

    index.json        # header, tensor layout, per object: prompts, outputs, marks
    e-<token>.bin     # one (object, frame) output: raw tensor bytes, then its packed mask
    s-<token>.bin     # a stashed output (a prompted frame's previous one), tensor bytes only
    m-<token>.bin     # a mask prompt's (1, 1, S, S) float32 tensor, raw bytes

Tensor bytes are exactly the engine's (`Tensors`: logits float32, object pointer float32,
score float32, memory bfloat16), so a restored session continues bit for bit. Files are
named by a token that is never reused, written once (temporary, fsync, rename) and never
modified, so a save only writes outputs that changed since the last one, the index is
replaced last, and a crash at any moment leaves the previous index with all its files.

The store is hostile input when read back: the index is size-capped and validated field by
field, every file's size is checked against the index before anything is allocated, and
each file carries a CRC-32 that is checked when it is read. Anything wrong raises
`StateStoreError` with one line; the caller ignores the store and keeps the project's masks.
"""

from __future__ import annotations

import json
import os
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.engine.memory_bank import Tensors

FORMAT_NAME = "masklet-engine-state"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
STATE_SUFFIX = "-state"  # NAME.masklet -> NAME.masklet-state
MAX_INDEX_BYTES = 256 * 2**20
_MAX_ELEMENTS = 2**28  # per tensor: far above any SAM 2 layout, far below a memory blow-up
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TENSOR_NAMES = ("logits", "obj_ptr", "score", "memory")
_TMP_PREFIX = ".tmp-"


class StateStoreError(ValueError):
    """The store is missing, stale (another video or model) or damaged; one line."""


@dataclass(frozen=True)
class StateIdentity:
    """What a store's tensors were computed from; a mismatch makes the store stale.

    `video`: a fingerprint of the video (built by the app); `checkpoint`: the model's identity.
    """

    video: str
    checkpoint: str


def state_folder(project_path: str | os.PathLike[str]) -> Path:
    """The state store folder beside a project file."""
    path = Path(project_path)
    return path.with_name(path.name + STATE_SUFFIX)


# ---- layout -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Shapes and dtypes of an output's four tensors, shared by every entry of a store."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[torch.dtype, ...]

    @classmethod
    def of(cls, tensors: Tensors) -> Layout:
        """The layout of an output; without its memory part if it has none yet."""
        parts = [p for p in _parts(tensors) if p is not None]
        return cls(tuple(tuple(p.shape) for p in parts), tuple(p.dtype for p in parts))

    @property
    def has_memory(self) -> bool:
        return len(self.shapes) == len(TENSOR_NAMES)

    def nbytes(self, *, with_memory: bool) -> int:
        if with_memory and not self.has_memory:
            raise StateStoreError("an entry has a memory but the layout has none")
        count = len(TENSOR_NAMES) if with_memory else len(TENSOR_NAMES) - 1
        return sum(
            _nbytes(s, d) for s, d in zip(self.shapes[:count], self.dtypes[:count], strict=True)
        )

    def to_json(self) -> dict:
        names = {v: k for k, v in _DTYPES.items()}
        return {
            n: {"shape": list(s), "dtype": names[d]}
            for n, s, d in zip(TENSOR_NAMES, self.shapes, self.dtypes, strict=False)
        }

    @classmethod
    def from_json(cls, value: object) -> Layout:
        names = TENSOR_NAMES if isinstance(value, dict) and "memory" in value else TENSOR_NAMES[:3]
        if not isinstance(value, dict) or set(value) != set(names):
            raise StateStoreError("the index's tensor layout is malformed")
        shapes, dtypes = [], []
        for name in names:
            item = value[name]
            shape = item.get("shape") if isinstance(item, dict) else None
            dtype = _DTYPES.get(item.get("dtype")) if isinstance(item, dict) else None
            ok = (
                isinstance(shape, list) and 0 < len(shape) <= 5 and all(_is_count(n) for n in shape)
            )
            if not ok or dtype is None or int(np.prod(shape)) > _MAX_ELEMENTS:
                raise StateStoreError(f"the index's layout of {name} is malformed")
            shapes.append(tuple(shape))
            dtypes.append(dtype)
        return cls(tuple(shapes), tuple(dtypes))

    def encode(self, tensors: Tensors) -> bytes:
        parts = [p for p in _parts(tensors) if p is not None]
        if len(parts) > len(self.shapes):
            raise ValueError("an output has a memory but the layout has none")
        for p, shape, dtype in zip(parts, self.shapes, self.dtypes, strict=False):
            if tuple(p.shape) != shape or p.dtype != dtype:
                raise ValueError(f"tensor {tuple(p.shape)} {p.dtype} does not fit the layout")
        return b"".join(_raw_bytes(p) for p in parts)

    def decode(self, data: bytes, device: torch.device, *, with_memory: bool) -> Tensors:
        out, offset = [], 0
        count = len(TENSOR_NAMES) if with_memory else len(TENSOR_NAMES) - 1
        for shape, dtype in zip(self.shapes[:count], self.dtypes[:count], strict=True):
            size = _nbytes(shape, dtype)
            raw = torch.frombuffer(bytearray(data[offset : offset + size]), dtype=torch.uint8)
            out.append(raw.view(dtype).reshape(shape).to(device))
            offset += size
        memory = out[3] if with_memory else None
        return Tensors(logits=out[0], obj_ptr=out[1], score=out[2], memory=memory)


def _parts(tensors: Tensors) -> list[torch.Tensor | None]:
    return [tensors.logits, tensors.obj_ptr, tensors.score, tensors.memory]


def _nbytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    return int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().contiguous().cpu().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ELEMENTS


# ---- files --------------------------------------------------------------------------------
def new_token() -> str:
    """A file token no other save, session or process will produce."""
    return secrets.token_hex(8)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the whole file or no file."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename still happened
    finally:
        os.close(fd)


def checksum(data: bytes) -> int:
    return zlib.crc32(data)


def read_checked(path: Path, size: int, crc: int | None = None, *, offset: int = 0) -> bytes:
    """`size` bytes at `offset` of a store file, refusing any file whose size or CRC is off."""
    try:
        with open(path, "rb") as f:
            total = os.fstat(f.fileno()).st_size
            if offset + size > total:
                raise StateStoreError(f"{path.name} is {total} bytes, its index needs more")
            f.seek(offset)
            data = f.read(size)
    except OSError as exc:
        raise StateStoreError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if len(data) != size:
        raise StateStoreError(f"{path.name} is shorter than its index says")
    if crc is not None and checksum(data) != crc:
        raise StateStoreError(f"{path.name} is damaged (checksum mismatch)")
    return data


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def remove_unlisted(folder: Path, keep: set[str]) -> None:
    """Delete this store's entry files and temporaries the index no longer lists."""
    for child in folder.iterdir():
        name = child.name
        ours = name.endswith(".bin") and name[:2] in ("e-", "s-", "m-")
        if (ours and name not in keep) or name.startswith(_TMP_PREFIX):
            child.unlink(missing_ok=True)


# ---- index --------------------------------------------------------------------------------
def header_json(identity: StateIdentity, image_size: int, precision: str) -> dict:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "video": identity.video,
        "checkpoint": identity.checkpoint,
        "image_size": image_size,
        "precision": precision,
    }


def read_index(folder: Path) -> dict:
    """The parsed index of a store; StateStoreError if missing or unreadable."""
    path = folder / INDEX_NAME
    if not path.is_file():
        raise StateStoreError(f"no saved engine state in {folder.name}")
    size = file_size(path)
    if size > MAX_INDEX_BYTES:
        raise StateStoreError(f"{INDEX_NAME} is {size} bytes, over the {MAX_INDEX_BYTES} limit")
    try:
        doc = json.loads(read_checked(path, size).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, StateStoreError):
            raise
        raise StateStoreError(f"{INDEX_NAME} is not valid JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("header"), dict):
        raise StateStoreError(f"{INDEX_NAME} has no header")
    return doc


def check_header(doc: dict, expected: dict) -> None:
    """StateStoreError naming what changed if the store was made for another video or model."""
    header = doc["header"]
    if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        raise StateStoreError("the saved engine state has an unknown format or version")
    # The checkpoint identity includes the input size (`app.project.state_identity`): checking the
    # size first names what the user changed when only Model > Input Size differs.
    for key, what in (
        ("video", "the video changed"),
        ("image_size", "the model's image size changed"),
        ("checkpoint", "the model changed"),
        ("precision", "the precision mode changed"),
    ):
        if header.get(key) != expected[key]:
            raise StateStoreError(f"the saved engine state is stale: {what}")


def write_index(folder: Path, doc: dict) -> None:
    write_file_atomic(folder / INDEX_NAME, json.dumps(doc, separators=(",", ":")).encode())
