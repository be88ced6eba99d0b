"""The geometry encoder and our ROI align against Meta's and torchvision's: golden
fixture, live oracle, and a per-sample transcription of torchvision's kernel."""

from __future__ import annotations

import math
from pathlib import Path

import golden_geometry as golden
import pytest
import torch
from sam3_heads_support import assert_informative, load_seeded
from sam3_oracle import require_sam3
from tolerance import assert_parity

from model.sam3.geometry_encoder import GeometryEncoder
from model.sam3.roi_align import roi_align

FIXTURE = Path(__file__).parent / "fixtures" / "geometry.pt"


def _check(t: dict[str, torch.Tensor]) -> None:
    encoder = load_seeded(GeometryEncoder(), t, golden.PREFIX)
    with torch.inference_mode():
        tokens, mask = encoder(
            t["image"],
            t["image_pos"],
            boxes=t["boxes"],
            box_labels=t["box_labels"],
            box_mask=t["box_mask"],
            points=t["points"],
            point_labels=t["point_labels"],
            point_mask=t["point_mask"],
        )
        cls_tokens, cls_mask = encoder(t["image"], t["image_pos"])
        rois = roi_align(t["roi_features"], t["roi_boxes"], 7)
    assert torch.equal(mask, t["mask"]) and torch.equal(cls_mask, t["cls_mask"])
    assert cls_tokens.shape[1] == 1  # the CLS token, always there
    for name, ours in (("tokens", tokens), ("cls_tokens", cls_tokens), ("roi", rois)):
        assert_informative(t[name], name)
        assert_parity(ours, t[name], name=name)


def test_geometry_encoder_matches_golden_fixture():
    _check(torch.load(FIXTURE, weights_only=True))


def test_geometry_encoder_matches_live_oracle():
    require_sam3()
    _check(golden.make())


def test_geometry_encoder_loads_the_oracle_state_dict_strictly():
    require_sam3()
    oracle = golden.build_oracle()
    ours = GeometryEncoder()
    ours.load_state_dict(oracle.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in oracle.state_dict().items()
    }


def _roi_align_per_sample(features: torch.Tensor, box: list[float], size: int) -> torch.Tensor:
    """torchvision's CPU kernel (aligned=False, adaptive sampling), one sample at a time."""
    c, h, w = features.shape
    x0, y0, x1, y1 = box
    rh, rw = max(y1 - y0, 1.0), max(x1 - x0, 1.0)
    bh, bw = rh / size, rw / size
    gh, gw = math.ceil(rh / size), math.ceil(rw / size)
    out = torch.zeros(c, size, size, dtype=torch.float64)
    f = features.double()
    for ph in range(size):
        for pw in range(size):
            total = torch.zeros(c, dtype=torch.float64)
            for iy in range(gh):
                y = y0 + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    x = x0 + pw * bw + (ix + 0.5) * bw / gw
                    if y < -1.0 or y > h or x < -1.0 or x > w:
                        continue
                    yy, xx = max(y, 0.0), max(x, 0.0)
                    ylo, xlo = int(yy), int(xx)
                    if ylo >= h - 1:
                        ylo = yhi = h - 1
                        yy = float(ylo)
                    else:
                        yhi = ylo + 1
                    if xlo >= w - 1:
                        xlo = xhi = w - 1
                        xx = float(xlo)
                    else:
                        xhi = xlo + 1
                    ly, lx = yy - ylo, xx - xlo
                    total += (
                        (1 - ly) * (1 - lx) * f[:, ylo, xlo]
                        + (1 - ly) * lx * f[:, ylo, xhi]
                        + ly * (1 - lx) * f[:, yhi, xlo]
                        + ly * lx * f[:, yhi, xhi]
                    )
            out[:, ph, pw] = total / max(gh * gw, 1)
    return out.float()


@pytest.mark.parametrize(
    "box",
    [
        [0.0, 0.0, 11.0, 9.0],
        [10.6, 8.7, 10.7, 8.8],  # under a pixel at the far corner: samples past the map
        [-0.8, -0.5, 3.2, 2.0],  # starting just outside
        [2.25, 1.5, 9.75, 7.5],
        [4.0, 4.0, 4.0, 4.0],  # empty: a 1 x 1 pixel box
    ],
)
def test_roi_align_matches_torchvision_kernel_per_sample(box):
    features = torch.randn(1, 3, 9, 11, generator=torch.Generator().manual_seed(7))
    ours = roi_align(features, torch.tensor([[box]]), 7)[0, 0]
    expected = _roi_align_per_sample(features[0], box, 7)
    assert_informative(expected)
    assert_parity(ours, expected, name="roi")
