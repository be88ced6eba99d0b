"""Loading Meta's official SAM 3 checkpoint (`sam3.pt`) into our finder.

The file holds the image detector under `detector.` and the video tracker under
`tracker.`, as a bare state dict or under `"model"`. The finder's keys are the detector's
with the prefix stripped; the tracker, and the detector backbone's `sam2_convs.*` (the
tracker's own neck branches), are skipped. The file is read once, memory-mapped, without
unpickling code (`model.sam2.checkpoint.read_state_dict`), and the finder is built on the
meta device and given the file's tensors themselves (`assign=True`): at 840 M parameters
a second full copy would cost 3.4 GB. Every way a file can be wrong ends in one
`CheckpointError` line.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model.sam2 import checkpoint as sam2_checkpoint
from model.sam2.checkpoint import compare_keys
from model.sam3.config_from_weights import infer_config
from model.sam3.finder import FinderConfig, Sam3Finder
from model.sam3.neck import UNUSED_CHECKPOINT_PREFIXES
from model.sam3.weights import convert_state

PREFIX = "detector."
TRACKER_PREFIX = "tracker."
_SKIPPED = tuple(f"backbone.vision_backbone.{p}" for p in UNUSED_CHECKPOINT_PREFIXES)
# Keys only a SAM 2 / 2.1 checkpoint has at its top level.
_SAM2_KEYS = ("image_encoder.trunk.patch_embed.proj.weight", "sam_mask_decoder.iou_token.weight")


class CheckpointError(sam2_checkpoint.CheckpointError):
    """A file that is not a usable SAM 3 checkpoint; the message is one line."""


def load_finder(
    path: str | Path,
    device: str | torch.device = "cpu",
    config: FinderConfig | None = None,
    dtype: torch.dtype = torch.float32,
) -> Sam3Finder:
    """The finder of the SAM 3 checkpoint at `path`, in eval mode on `device`. `config`
    gives the sizes (default: read off the file's shapes, `model.sam3.config_from_weights`);
    keys and shapes must match it exactly. `dtype` torch.bfloat16 holds the large weights
    in bf16, for fast mode only (`model.sam3.weights`)."""
    name = Path(path).name
    try:
        sam2_checkpoint.check_checkpoint_file(path)
        _check_header(Path(path))
        state = sam2_checkpoint.read_state_dict(path)
    except sam2_checkpoint.CheckpointError as err:
        raise CheckpointError(str(err)) from None
    return finder_from_state_dict(state, config, name=name, dtype=dtype).to(device)


def finder_from_state_dict(
    state: dict[str, torch.Tensor],
    config: FinderConfig | None = None,
    *,
    name: str = "checkpoint",
    dtype: torch.dtype = torch.float32,
) -> Sam3Finder:
    """The finder holding a SAM 3 checkpoint's tensors themselves (not copies), eval mode;
    with `dtype` bf16 its large weights converted one at a time (`model.sam3.weights`)."""
    state = detector_state_dict(state, name=name)
    finder = _build(state, config, name)
    expected = finder.state_dict()
    mismatch = compare_keys(expected, state)
    if mismatch:
        raise CheckpointError(f"{name}: does not fit the SAM 3 finder: {mismatch.describe()}")
    _check_dtypes(expected, state, name)
    convert_state(state, dtype)
    finder.load_state_dict(state, strict=True, assign=True)
    finder.held_dtype = dtype
    return finder.eval()


def _build(state: dict[str, torch.Tensor], config: FinderConfig | None, name: str) -> Sam3Finder:
    """The finder on the meta device, sized by `config` or by the state's shapes; shapes
    that give no valid sizes (a zero width, a table of the wrong rank, thousands of
    layers) are one CheckpointError line, whatever the sizing or a constructor raised."""
    try:
        cfg = config or infer_config(state)
        with torch.device("meta"):
            return Sam3Finder(cfg=cfg)
    except Exception as err:  # noqa: BLE001 - any inconsistency of hostile shapes
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{name}: does not fit the SAM 3 finder: {reason}") from None


def _check_header(path: Path) -> None:
    """Torch files are zip archives (or, before torch 1.6, start with a pickle protocol
    byte): anything else is rejected before the unpickler, whose errors on arbitrary
    bytes would read as if the file held code."""
    with path.open("rb") as f:
        head = f.read(2)
    if not (head == b"PK" or head[:1] == b"\x80"):
        raise CheckpointError(f"{path.name}: not a PyTorch checkpoint")


def detector_state_dict(
    state: dict[str, torch.Tensor], *, name: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The finder's entries of a SAM 3 checkpoint's state dict: `detector.*` without the
    prefix, less the tracker-only branches; other keys outside `tracker.` are kept, so that
    the strict comparison names them as unexpected."""
    if not any(k.startswith(PREFIX) for k in state):
        if any(k in state for k in _SAM2_KEYS):
            raise CheckpointError(
                f"{name}: this is a SAM 2 checkpoint; finding by phrase needs SAM 3 (sam3.pt)"
            )
        shown = ", ".join(sorted(state)[:3])
        raise CheckpointError(f"{name}: not a SAM 3 checkpoint (no detector.* keys: {shown}, ...)")
    out = {}
    for key, value in state.items():
        if key.startswith(TRACKER_PREFIX):
            continue
        key = key.removeprefix(PREFIX)
        if not key.startswith(_SKIPPED):
            out[key] = value
    return out


def _check_dtypes(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], name: str
) -> None:
    """Weights must be floating point and the RoPE tables complex, as built: a file with
    integers where weights belong would load and compute garbage."""
    for key, tensor in state.items():
        want_complex = expected[key].is_complex()
        ok = tensor.is_complex() if want_complex else tensor.is_floating_point()
        if not ok:
            dtype = str(tensor.dtype).removeprefix("torch.")
            raise CheckpointError(f"{name}: tensor {key} holds {dtype} values, not weights")
