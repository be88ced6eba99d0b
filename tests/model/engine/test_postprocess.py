"""Connected components (OpenCV on CPU, torch label propagation elsewhere) against a plain
breadth-first search and each other; hole/speck filling."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from model.engine import postprocess
from model.engine.postprocess import connected_components, fill_holes_and_specks

# Both implementations, run on CPU tensors: the torch one is what CUDA/MPS use.
_IMPLS = {"opencv": connected_components, "torch": postprocess._components_torch}


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


@pytest.mark.parametrize("impl", sorted(_IMPLS))
@pytest.mark.parametrize("density", [0.2, 0.45, 0.6])
def test_components_match_breadth_first_search(density: float, impl: str) -> None:
    rng = np.random.default_rng(int(density * 100))
    masks = rng.random((3, 1, 23, 31)) < density
    labels, areas = _IMPLS[impl](torch.from_numpy(masks))
    for i in range(3):
        m = masks[i, 0]
        np.testing.assert_array_equal(areas[i, 0].numpy(), _bfs_areas(m))
        lab = labels[i, 0].numpy()
        assert (lab[~m] == 0).all() and (lab[m] > 0).all()
        # One label per component: the number of labels equals the component count.
        expected = _bfs_areas(m)
        assert len(np.unique(lab[m])) == round(float(np.sum(1.0 / expected[m])))


@pytest.mark.parametrize("impl", sorted(_IMPLS))
def test_long_snake_converges(impl: str) -> None:
    mask = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    mask[0, 0, ::2, :] = True  # rows joined alternately at the ends: one long path
    mask[0, 0, 1::4, -1] = True
    mask[0, 0, 3::4, 0] = True
    labels, areas = _IMPLS[impl](mask)
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


def _fill_with_torch_components(
    logits: torch.Tensor, max_hole_area: int, max_speck_area: int
) -> torch.Tensor:
    """The clean-up as it was before OpenCV: torch label propagation for every device."""
    out = logits
    if max_hole_area > 0:
        labels, areas = postprocess._components_torch(logits <= 0)
        out = torch.where((labels > 0) & (areas <= max_hole_area), 0.1, out)
    if max_speck_area > 0:
        labels, areas = postprocess._components_torch(logits > 0)
        out = torch.where((labels > 0) & (areas <= max_speck_area), -0.1, out)
    return out


def _structured_masks(size: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    return {
        "rings": (radius.astype(int) // 3) % 2 == 0,
        "checkerboard": (yy + xx) % 2 == 0,
        "checker_blocks": ((yy // 2) + (xx // 3)) % 2 == 0,
        "diagonals": (yy - xx) % 5 == 0,
        "anti_diagonals": (yy + xx) % 4 == 0,
        "all_on": np.ones((size, size), bool),
        "all_off": np.zeros((size, size), bool),
        "border_frame": (yy == 0) | (xx == 0) | (yy == size - 1) | (xx == size - 1),
        "dots": (yy % 4 == 1) & (xx % 4 == 2),
    }


def _logits_from(mask: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Logits whose sign is the mask, with varied magnitudes (and exact zeros: background)."""
    magnitude = rng.random(mask.shape).astype(np.float32) * 8
    signed = np.where(mask, magnitude + 0.01, -magnitude)
    return torch.from_numpy(signed.astype(np.float32))


@pytest.mark.parametrize("areas", [(8, 0), (8, 8), (1, 3), (200, 50), (10**6, 10**6)])
def test_opencv_clean_up_equals_torch_on_structured_masks(areas: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    masks = _structured_masks(48)
    # One batch with every pattern (N > 1) and each pattern on its own.
    batch = torch.stack([_logits_from(m, rng) for m in masks.values()])[:, None]
    hole, speck = areas
    got = fill_holes_and_specks(batch, max_hole_area=hole, max_speck_area=speck)
    want = _fill_with_torch_components(batch, hole, speck)
    assert torch.equal(got, want)
    for i in range(batch.shape[0]):
        one = batch[i : i + 1]
        assert torch.equal(
            fill_holes_and_specks(one, max_hole_area=hole, max_speck_area=speck),
            _fill_with_torch_components(one, hole, speck),
        )
    # The patterns are not trivial: something was flipped for the small-area settings.
    if hole == 8:
        assert not torch.equal(got, batch)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_opencv_clean_up_equals_torch_on_random_masks(density: float) -> None:
    rng = np.random.default_rng(int(density * 1000))
    shape = (4, 1, 37, 53)  # not square, odd sides, a batch
    logits = torch.from_numpy((rng.random(shape) - (1 - density)).astype(np.float32) * 10)
    for hole, speck in [(8, 0), (4, 4), (30, 12)]:
        got = fill_holes_and_specks(logits, max_hole_area=hole, max_speck_area=speck)
        assert torch.equal(got, _fill_with_torch_components(logits, hole, speck))


def test_opencv_components_equal_torch_components() -> None:
    rng = np.random.default_rng(3)
    mask = torch.from_numpy(rng.random((2, 1, 40, 40)) < 0.5)
    labels, areas = connected_components(mask)
    ref_labels, ref_areas = postprocess._components_torch(mask)
    assert torch.equal(areas, ref_areas)
    # The same partition: label pairs map one to one on each mask's foreground.
    for i in range(mask.shape[0]):
        m = mask[i]
        pairs = set(zip(labels[i][m].tolist(), ref_labels[i][m].tolist(), strict=True))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}) > 1
    assert (labels[~mask] == 0).all()


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="must be"):
        connected_components(torch.zeros(2, 3, 4, 4, dtype=torch.bool))
