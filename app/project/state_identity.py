"""What a saved engine state was computed from: the video's fingerprint, the model's identity.

A state store (`model.engine.state_store`) is only valid for the exact frames and weights
that produced it. Both identities are cheap to compute on every open:

- the video: its frame count and size plus a BLAKE2 hash of the file's size and its first
  and last MiB (for an image folder: every file's name and size, and the first and last
  file's head). Re-encoding, trimming or replacing the file changes them; copying or
  moving the project and video elsewhere does not, so a copied project keeps its state.
- the checkpoint: the model variant and image size plus the same hash of the checkpoint
  file (size, first and last MiB). Hashing the whole file or the state dict would cost
  seconds on each model load for a 150-900 MB file; the modification time is not used
  because a copy changes it. A re-conversion or fine-tune rewrites the tensors at the end
  of the file, which the tail hash sees. A model that is not a file (a random-init test
  model) is identified by its name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_EDGE = 2**20  # bytes hashed at each end of a file
_MAX_LISTED = 100_000  # files of an image folder taken into its fingerprint


def _file_digest(path: Path, h: hashlib.blake2b) -> None:
    size = path.stat().st_size
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        if size > _EDGE:
            f.seek(max(size - _EDGE, _EDGE))
            h.update(f.read(_EDGE))


def video_fingerprint(path: str, num_frames: int, video_size: tuple[int, int]) -> str:
    """One string naming the video's content; OSError if it cannot be read."""
    h = hashlib.blake2b(digest_size=16)
    p = Path(path)
    if p.is_dir():
        files = sorted(c for c in p.iterdir() if c.is_file())[:_MAX_LISTED]
        for c in files:
            h.update(f"{c.name}\0{c.stat().st_size}\0".encode())
        for c in files[:1] + files[-1:]:
            _file_digest(c, h)
    else:
        _file_digest(p, h)
    height, width = video_size
    return f"v1:{num_frames}:{height}x{width}:{h.hexdigest()}"


def checkpoint_identity(checkpoint: str, variant: str, image_size: int) -> str:
    """One string naming the model's weights (see the module docstring for why this way)."""
    p = Path(checkpoint) if checkpoint else None
    if p is None or not p.is_file():
        return f"c1:{variant}:{image_size}:name:{checkpoint}"
    h = hashlib.blake2b(digest_size=16)
    _file_digest(p, h)
    return f"c1:{variant}:{image_size}:{h.hexdigest()}"
