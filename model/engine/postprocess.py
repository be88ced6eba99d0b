"""Mask clean-up: fill small holes and remove small specks, as SAM 2's post-processing does.

SAM 2 finds connected components with a CUDA kernel; here they come from label
propagation in plain torch (runs on any device): every foreground pixel starts
with its own index, takes the largest label in its 3x3 neighbourhood (8-connected)
and then jumps to the label its label points at, until nothing changes. Jumping
makes long thin shapes converge in far fewer rounds than pure propagation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of (N, 1, H, W) bool masks.

    Returns labels (N, 1, H, W) int64, > 0 on foreground (equal within a component),
    and areas (N, 1, H, W) int64: the pixel count of each pixel's component, 0 on
    background.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W), got {tuple(mask.shape)}")
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
        labels, areas = connected_components(logits <= 0)
        out = torch.where((labels > 0) & (areas <= max_hole_area), 0.1, out)
    if max_speck_area > 0:
        # Specks are judged on the input, as SAM 2's post-processing does.
        labels, areas = connected_components(logits > 0)
        out = torch.where((labels > 0) & (areas <= max_speck_area), -0.1, out)
    return out
