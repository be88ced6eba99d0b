"""Mask clean-up: fill small holes and remove small specks, as SAM 2's post-processing does.

SAM 2 finds connected components with a CUDA kernel. Here:

- on CPU tensors they come from OpenCV (`cv2.connectedComponentsWithStats`, 8-connected):
  a linear-time scan, about 0.1 ms for a 256 x 256 low-res mask (the size the session
  cleans at image_size 1024), where label propagation took up to seconds on noisy masks;
- on other devices (CUDA, MPS) they come from label propagation in plain torch, which
  stays on the device instead of copying every mask to the host: every foreground pixel
  starts with its own index, takes the largest label in its 3x3 neighbourhood and then
  jumps to the label its label points at, until nothing changes. Jumping makes long thin
  shapes converge in far fewer rounds than pure propagation.

Both give the same components, so the cleaned logits are identical on every device.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of (N, 1, H, W) bool masks.

    Returns labels (N, 1, H, W) int64, > 0 on foreground (equal within a component,
    distinct between components), and areas (N, 1, H, W) int64: the pixel count of
    each pixel's component, 0 on background.
    """
    _check_shape(mask)
    if mask.device.type == "cpu":
        return _components_opencv(mask)
    return _components_torch(mask)


def _check_shape(mask: torch.Tensor) -> None:
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W), got {tuple(mask.shape)}")


def _components_opencv(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    masks = np.ascontiguousarray(mask[:, 0].to(torch.uint8).numpy())
    labels = np.zeros(masks.shape, np.int64)
    areas = np.zeros(masks.shape, np.int64)
    for i, m in enumerate(masks):
        _, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
        per_label = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
        per_label[0] = 0  # OpenCV's label 0 is the background
        labels[i] = lab
        areas[i] = per_label[lab]
    return torch.from_numpy(labels)[:, None], torch.from_numpy(areas)[:, None]


def _components_torch(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, _, h, w = mask.shape
    mask = mask.bool()
    # float32 represents every index exactly up to 2**24 pixels (4096 x 4096).
    index = torch.arange(1, h * w + 1, device=mask.device, dtype=torch.float32)
    labels = torch.where(mask, index.view(1, 1, h, w), 0.0)  # (N, 1, H, W)
    flat_mask = mask.flatten(1)
    while True:
        grown = torch.where(mask, F.max_pool2d(labels, 3, stride=1, padding=1), 0.0)
        flat = grown.flatten(1)  # (N, HW)
        pointed = flat.gather(1, (flat.long() - 1).clamp(min=0))
        grown = torch.where(flat_mask, torch.maximum(flat, pointed), 0.0).view_as(labels)
        if torch.equal(grown, labels):
            break
        labels = grown
    labels = labels.long()
    offsets = (torch.arange(n, device=mask.device) * (h * w + 1)).view(n, 1, 1, 1)
    keys = (labels + offsets).flatten()
    counts = torch.bincount(keys, minlength=n * (h * w + 1))
    areas = torch.where(mask, counts[keys].view_as(labels), 0)
    return labels, areas


def small_components(mask: torch.Tensor, max_area: int) -> torch.Tensor:
    """(N, 1, H, W) bool: the pixels of `mask` whose 8-connected component has at most
    `max_area` pixels."""
    _check_shape(mask)
    if mask.device.type != "cpu":
        labels, areas = _components_torch(mask)
        return (labels > 0) & (areas <= max_area)
    masks = np.ascontiguousarray(mask[:, 0].to(torch.uint8).numpy())
    out = np.empty(masks.shape, bool)
    for i, m in enumerate(masks):
        _, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
        # A lookup table per label, the background's entry false: one gather per pixel.
        is_small = stats[:, cv2.CC_STAT_AREA] <= max_area
        is_small[0] = False
        out[i] = is_small[lab]
    return torch.from_numpy(out)[:, None]


def fill_holes_and_specks(
    logits: torch.Tensor, *, max_hole_area: int, max_speck_area: int = 0
) -> torch.Tensor:
    """(N, 1, H, W) mask logits with small background holes and foreground specks flipped.

    Holes (background components of at most `max_hole_area` pixels) get a small
    positive logit, specks (foreground components of at most `max_speck_area`) a small
    negative one, so later thresholding at 0 sees them flipped. 0 disables either.
    """
    if max_hole_area < 0 or max_speck_area < 0:
        raise ValueError("areas must be >= 0")
    out = logits
    if max_hole_area > 0:
        out = torch.where(small_components(logits <= 0, max_hole_area), 0.1, out)
    if max_speck_area > 0:
        # Specks are judged on the input, as SAM 2's post-processing does.
        out = torch.where(small_components(logits > 0, max_speck_area), -0.1, out)
    return out
