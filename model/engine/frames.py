"""Video frames as the model sees them: the `FrameSource` protocol and preprocessing."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

# ImageNet statistics, as the released models were trained with.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class FrameSource(Protocol):
    """Random access to a video's frames, read lazily by the tracking session."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame `index` as (H, W, 3) uint8 RGB."""
        ...


def check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    """The frame if it is (H, W, 3) uint8, else a ValueError naming what is wrong."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(
            f"frame {index}: expected a uint8 numpy array, got {type(frame).__name__}"
            f" {getattr(frame, 'dtype', '')}"
        )
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index}: expected shape (H, W, 3), got {frame.shape}")
    return frame


def preprocess_frame(frame: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, S, S) float32, resized and ImageNet-normalised.

    Bicubic with antialiasing in 8 bits, as the reference's PIL resize of its JPEG frames:
    torch's uint8 route follows PIL's fixed-point algorithm, on the CPU, where the frame
    already is (480 x 640 -> 1024: 3.6 ms against 14 for the float route; on a noisy test
    frame within 1 level of PIL on 0.03% of the values, where the float route missed by
    up to 18 levels on 21%; tests/model/engine/test_frames.py).
    Other dtypes are resized in float32 and rounded back to 8-bit levels.
    """
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]  # channels-last
    if x.shape[-2:] != (image_size, image_size):
        size = (image_size, image_size)
        if x.dtype == torch.uint8:
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True)
        else:
            x = F.interpolate(x.float(), size=size, mode="bicubic", antialias=True)
            x = x.clamp(0, 255).round()
    x = x.to(device).float()
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std
