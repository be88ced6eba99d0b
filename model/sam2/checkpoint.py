"""Loading Meta's official SAM 2 / 2.1 checkpoints, and saving ours in the same format.

An official checkpoint is a zip-format torch file holding `{"model": state_dict}`.
Loading never unpickles code (`weights_only=True`), finds the variant from the
keys and shapes alone, and loads strictly. Every way a file can be wrong ends in
one `CheckpointError` line that says what is wrong.
"""

from __future__ import annotations

import os
import pickle
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model.sam2.config import VARIANTS, Sam2Config

# Trunk depth and width identify the size; two SAM 2.1-only parameters the version.
_SIZE_BY_TRUNK = {(96, 12): "tiny", (96, 16): "small", (112, 24): "base-plus", (144, 48): "large"}
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_SAM21_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")
if TYPE_CHECKING:
    from model.sam2.model import Sam2Model

_SAM1_PREFIXES = ("image_encoder.blocks.", "prompt_encoder.", "mask_decoder.")
# Official files are float32; half precisions are what a user's own conversion would give.
_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class CheckpointError(ValueError):
    """A file that is not a usable SAM 2 checkpoint; the message is one line."""


@dataclass(frozen=True)
class KeyMismatch:
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    misshaped: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshaped)

    def describe(self) -> str:
        parts = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.misshaped),
        ):
            if keys:
                shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, without executing any pickled code."""
    path = Path(path)
    check_checkpoint_file(path)
    try:
        obj = _torch_load(path)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise CheckpointError(
                f"{path.name}: refusing to load, the file contains pickled code, not just weights"
            ) from None
        raise CheckpointError(
            f"{path.name}: not a PyTorch checkpoint ({_first_line(err)})"
        ) from None
    # The unpickler fails on arbitrary bytes with any exception type (KeyError, ...).
    except Exception as err:
        raise CheckpointError(f"{path.name}: {_damage_reason(path, err)}") from None
    return _extract_state_dict(obj, path.name)


def check_checkpoint_file(path: str | Path) -> None:
    """Raise CheckpointError unless `path` leads to a regular file.

    `stat` never blocks, whereas `torch.load` would wait forever on a FIFO and read a
    device such as /dev/zero until memory runs out; a folder deserves its own message."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"checkpoint {path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"checkpoint {path} is not a regular file (a pipe, device or socket)")


def check_weights(state_dict: dict[str, torch.Tensor], *, name: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first tensor that is not floating point or not finite.

    Checked one tensor at a time, so the only extra memory is one boolean mask of the
    largest tensor (a quarter of its float32 size), never a second copy of the weights."""
    for key, tensor in state_dict.items():
        if tensor.dtype not in _WEIGHT_DTYPES:
            raise CheckpointError(
                f"{name}: tensor {key} holds {str(tensor.dtype).removeprefix('torch.')} "
                "values, expected floating-point weights"
            )
        if not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise CheckpointError(f"{name}: tensor {key} holds {kind} values; the file is damaged")


def _torch_load(path: Path) -> object:
    with warnings.catch_warnings():
        # torch warns about pickle protocols on files that are not its own; the
        # caller turns any failure into one clear line instead.
        warnings.simplefilter("ignore", UserWarning)
        return _torch_load_quiet(path)


def _torch_load_quiet(path: Path) -> object:
    try:
        # mmap keeps peak memory at one copy of the weights for the large model.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def _damage_reason(path: Path, err: Exception) -> str:
    text = _first_line(err)
    if zipfile.is_zipfile(path) or "central directory" in text or "zip archive" in text:
        return f"damaged or truncated checkpoint ({text})"
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return f"damaged or truncated checkpoint ({text})"
    # Details from the unpickler on arbitrary bytes (e.g. "KeyError: 101") mean nothing to a user.
    return "not a PyTorch checkpoint"


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


def _extract_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{name}: no model weights found (expected a 'model' state dict)")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        raise CheckpointError(
            f"{name}: no model weights found (the 'model' entry is not a state dict)"
        )
    return tensors


def detect_variant(state_dict: dict[str, torch.Tensor], *, name: str = "checkpoint") -> Sam2Config:
    """The official variant whose keys these are (image size 1024)."""
    if _PATCH_KEY not in state_dict:
        if any(k.startswith(_SAM1_PREFIXES) for k in state_dict):
            raise CheckpointError(
                f"{name}: this is a Segment Anything (SAM 1) checkpoint; Masklet needs SAM 2 or 2.1"
            )
        shown = ", ".join(sorted(state_dict)[:3])
        raise CheckpointError(
            f"{name}: not a SAM 2 checkpoint (no Hiera image encoder; keys: {shown}, ...)"
        )
    width = state_dict[_PATCH_KEY].shape[0]
    depth = len(
        {k.split(".")[3] for k in state_dict if k.startswith("image_encoder.trunk.blocks.")}
    )
    size = _SIZE_BY_TRUNK.get((width, depth))
    if size is None:
        raise CheckpointError(
            f"{name}: unknown SAM 2 image encoder (width {width}, {depth} blocks); "
            "expected tiny, small, base+ or large"
        )
    version = "sam2.1" if any(k in state_dict for k in _SAM21_KEYS) else "sam2"
    return VARIANTS[f"{version}-{size}"]


def compare_keys(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> KeyMismatch:
    """Which keys are missing, unexpected, or present with another shape."""
    return KeyMismatch(
        missing=tuple(sorted(set(expected) - set(actual))),
        unexpected=tuple(sorted(set(actual) - set(expected))),
        misshaped=tuple(
            sorted(
                f"{k} {tuple(actual[k].shape)} vs {tuple(expected[k].shape)}"
                for k in set(expected) & set(actual)
                if actual[k].shape != expected[k].shape
            )
        ),
    )


def load_model(
    path: str | Path,
    *,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
) -> Sam2Model:
    """Build the right variant for an official checkpoint and load its weights strictly.

    Returns a `Sam2Model` in eval mode on `device`.
    """
    from model.sam2.build import build_model

    path = Path(path)
    state_dict = read_state_dict(path)
    check_weights(state_dict, name=path.name)
    cfg = detect_variant(state_dict, name=path.name)
    if image_size is not None:
        cfg = cfg.with_image_size(image_size)
    with torch.device("meta"):
        expected = build_model(cfg).state_dict()
    mismatch = compare_keys(expected, state_dict)
    if mismatch:
        raise CheckpointError(f"{path.name}: does not match {cfg.name}: {mismatch.describe()}")
    model = build_model(cfg)
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


def save_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Write `{"model": state_dict}`, the layout of the official files."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict()}, tmp)
    tmp.replace(path)
