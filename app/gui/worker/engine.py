"""What the worker needs from the tracking engine, as three injectable callables.

The real engine (`model.sam2.checkpoint`, `model.engine.session`) is imported lazily inside the
factories, so the GUI imports without torch work and tests can swap in a fast fake
engine with the same session interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class FrameSource(Protocol):
    """Anything indexable by frame number giving (H, W, 3) uint8 RGB frames."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


# (checkpoint, device) or, for Model > Input Size, (checkpoint, device, image_size=N);
# without `image_size` the model runs at its checkpoint's own size (1024 for SAM 2.1).
ModelLoader = Callable[..., Any]
SessionOpener = Callable[[Any, FrameSource, str], Any]
# (points, labels, box), or a mask prompt as make_prompt(None, None, None, mask=(H, W) bool).
PromptMaker = Callable[..., Any]
# (checkpoint, device) -> SAM 3's finder (`model.sam3.finder.Sam3Finder` or alike).
FinderLoader = Callable[[str, str], Any]


def _load_finder(checkpoint: str, device: str) -> Any:
    from model.sam3.checkpoint import load_finder

    return load_finder(checkpoint, device=device)


@dataclass(frozen=True)
class Engine:
    """How to load a model, open a session on a video, and build a prompt for it."""

    load_model: ModelLoader
    open_session: SessionOpener
    make_prompt: PromptMaker
    load_finder: FinderLoader = _load_finder


def _load_checkpoint(checkpoint: str, device: str, image_size: int | None = None) -> Any:
    from model.sam2.checkpoint import load_model

    return load_model(checkpoint, image_size=image_size, device=device)


def _open_tracking_session(model: Any, source: FrameSource, device: str) -> Any:
    from model.engine.session import TrackingSession

    return TrackingSession(model, source, device=device)


def describe_precision(requested: str, device: str) -> tuple[str, str]:
    """("bf16" or "float32", one-line reason) for a precision request on `device`."""
    from model.engine.precision import DTYPE_NAMES, resolve_precision

    precision, reason = resolve_precision(requested, device)
    return DTYPE_NAMES[precision], reason


def _make_session_prompt(
    points: np.ndarray | None,
    labels: np.ndarray | None,
    box: np.ndarray | None,
    mask: np.ndarray | None = None,
) -> Any:
    from model.engine.session import Prompt

    return Prompt(points=points, labels=labels, box=box, mask=mask)


def real_engine(
    load_model: ModelLoader | None = None, load_finder: FinderLoader | None = None
) -> Engine:
    """The SAM 2 engine and SAM 3 finder; `load_model` and `load_finder` override checkpoint
    loading (e.g. random-init models)."""
    return Engine(
        load_model=load_model or _load_checkpoint,
        open_session=_open_tracking_session,
        make_prompt=_make_session_prompt,
        load_finder=load_finder or _load_finder,
    )


def random_model_loader(variant: str = "sam2.1-tiny", image_size: int = 256) -> ModelLoader:
    """A loader ignoring the checkpoint path: a random-init model, for tests and screenshots.

    `image_size` is the model's own size; a size passed to the loader overrides it."""
    native = image_size

    def load(_checkpoint: str, device: str, image_size: int | None = None) -> Any:
        import torch

        from model.sam2.build import build_model
        from model.sam2.config import get_config

        torch.manual_seed(0)
        size = image_size or native
        return build_model(get_config(variant, image_size=size)).to(device).eval()

    return load


def random_finder_loader(config: Any = None, seed: int = 0) -> FinderLoader:
    """A finder loader ignoring the checkpoint path: a random-init SAM 3 finder of `config`
    (default `model.sam3.finder.small_finder_config()`), the same weights for the same seed."""

    def load(_checkpoint: str, device: str) -> Any:
        import torch

        from model.sam3.finder import Sam3Finder, small_finder_config

        torch.manual_seed(seed)
        return Sam3Finder(cfg=config or small_finder_config()).to(device).eval()

    return load
