"""ROI align (Mask R-CNN's), as torchvision's kernels compute it with `aligned=False` and
adaptive sampling (`sampling_ratio=-1`), without torchvision.

Each output bin averages bilinear samples on a grid of ceil(box side / bins) points per
axis; a sample beyond one pixel outside the map counts as zero, one within it is clamped
to the border. Bilinear weights factor into a row weight times a column weight, and so
does the sample grid, so a box's bins are two small matrices applied to the map:
out[c, i, j] = sum_{y, x} R[i, y] F[c, y, x] C[j, x], with R and C the mean sample
weights of bin row i over the map's rows and of bin column j over its columns. Exact
(the same sums in another order), and no per-sample gathers.

torchvision's pure-Python fallback (what it runs where its compiled ops are missing) skips
the "outside counts as zero" rule; for boxes inside the map, all the detector takes, the
two agree.
"""

from __future__ import annotations

import torch


def _axis_weights(start: torch.Tensor, length: torch.Tensor, bins: int, size: int) -> torch.Tensor:
    """start, length (K,) of each box along one axis, in map pixels -> (K, bins, size): the
    mean bilinear weight of each bin's samples on each map row (or column)."""
    length = length.clamp(min=1.0)
    bin_size = length / bins
    grid = torch.ceil(length / bins)  # samples per bin along this axis, >= 1
    steps = int(grid.max().item()) if grid.numel() else 1
    i = torch.arange(steps, device=start.device, dtype=start.dtype)
    p = torch.arange(bins, device=start.device, dtype=start.dtype)
    k = lambda t: t[:, None, None]  # noqa: E731 - per box, broadcast over (bins, steps)
    pos = k(start) + p[None, :, None] * k(bin_size) + (i[None, None, :] + 0.5) * k(bin_size / grid)
    used = (i[None, None, :] < k(grid)) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0.0)
    low = pos.floor()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    pos = torch.where(edge, low, pos)
    high = torch.where(edge, low, low + 1)
    frac = pos - low
    used = used.to(start.dtype)
    weights = torch.zeros(*pos.shape, size, device=start.device, dtype=start.dtype)
    weights.scatter_add_(-1, low.long()[..., None], ((1.0 - frac) * used)[..., None])
    weights.scatter_add_(-1, high.long()[..., None], (frac * used)[..., None])
    return weights.sum(2) / k(grid)


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """features (B, C, H, W); boxes (B, N, 4) as x0, y0, x1, y1 in feature-map pixels ->
    (B, N, C, output_size, output_size)."""
    b, n = boxes.shape[:2]
    h, w = features.shape[-2:]
    flat = boxes.reshape(b * n, 4).to(torch.float32)
    x0, y0, x1, y1 = flat.unbind(-1)
    rows = _axis_weights(y0, y1 - y0, output_size, h).view(b, n, output_size, h)
    cols = _axis_weights(x0, x1 - x0, output_size, w).view(b, n, output_size, w)
    rows, cols = rows.to(features.dtype), cols.to(features.dtype)
    # (B, N, P, H) x (B, C, H, W) x (B, N, Q, W) -> (B, N, C, P, Q), rows first.
    by_rows = torch.einsum("bnph,bchw->bncpw", rows, features)
    return torch.einsum("bncpw,bnqw->bncpq", by_rows, cols)
