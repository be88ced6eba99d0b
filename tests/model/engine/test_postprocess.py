"""Connected components in torch against a plain breadth-first search; hole/speck filling."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from model.engine.postprocess import connected_components, fill_holes_and_specks


def _bfs_areas(mask: np.ndarray) -> np.ndarray:
    """Area of each pixel's 8-connected component, 0 on background."""
    h, w = mask.shape
    areas = np.zeros((h, w), np.int64)
    seen = np.zeros((h, w), bool)
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        queue, members = deque([(y0, x0)]), []
        seen[y0, x0] = True
        while queue:
            y, x = queue.popleft()
            members.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        for y, x in members:
            areas[y, x] = len(members)
    return areas


@pytest.mark.parametrize("density", [0.2, 0.45, 0.6])
def test_components_match_breadth_first_search(density: float) -> None:
    rng = np.random.default_rng(int(density * 100))
    masks = rng.random((3, 1, 23, 31)) < density
    labels, areas = connected_components(torch.from_numpy(masks))
    for i in range(3):
        m = masks[i, 0]
        np.testing.assert_array_equal(areas[i, 0].numpy(), _bfs_areas(m))
        lab = labels[i, 0].numpy()
        assert (lab[~m] == 0).all() and (lab[m] > 0).all()
        # One label per component: the number of labels equals the component count.
        expected = _bfs_areas(m)
        assert len(np.unique(lab[m])) == round(float(np.sum(1.0 / expected[m])))


def test_long_snake_converges() -> None:
    mask = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    mask[0, 0, ::2, :] = True  # rows joined alternately at the ends: one long path
    mask[0, 0, 1::4, -1] = True
    mask[0, 0, 3::4, 0] = True
    labels, areas = connected_components(mask)
    assert labels[mask].unique().numel() == 1
    assert areas[mask].unique().tolist() == [int(mask.sum())]


def test_fill_holes_and_specks() -> None:
    logits = torch.full((1, 1, 20, 20), -5.0)
    logits[0, 0, 2:12, 2:12] = 5.0
    logits[0, 0, 5:7, 5:7] = -3.0  # a 4-pixel hole
    logits[0, 0, 16, 16] = 4.0  # a 1-pixel speck
    out = fill_holes_and_specks(logits, max_hole_area=4, max_speck_area=1)
    assert (out[0, 0, 5:7, 5:7] > 0).all() and out[0, 0, 16, 16] < 0
    assert torch.equal(out[0, 0, :2], logits[0, 0, :2])  # the big background stays
    kept = fill_holes_and_specks(logits, max_hole_area=3)
    assert (kept[0, 0, 5:7, 5:7] < 0).all() and kept[0, 0, 16, 16] > 0
    with pytest.raises(ValueError):
        fill_holes_and_specks(logits, max_hole_area=-1)
