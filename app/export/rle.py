"""COCO run-length encoding helpers on top of pycocotools, shared by export and import."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["EncodedMask", "encode_mask", "mask_to_polygons"]


@dataclass(frozen=True)
class EncodedMask:
    """A mask as compressed COCO RLE (`counts` is a str, JSON-ready) with its box and area."""

    rle: dict
    bbox: list[float]  # [x, y, w, h]
    area: int


def encode_mask(mask: np.ndarray) -> EncodedMask:
    """Encode an (H, W) bool mask exactly; holes and separate parts survive bit for bit."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    rle = {"size": [int(s) for s in rle["size"]], "counts": counts.decode("ascii")}
    # pycocotools wants bytes counts back for its own area/bbox calls.
    compressed = {"size": rle["size"], "counts": counts}
    bbox = [float(v) for v in mask_utils.toBbox(compressed)]
    return EncodedMask(rle=rle, bbox=bbox, area=int(mask_utils.area(compressed)))


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours as COCO polygons [x0, y0, x1, y1, ...]. Lossy: holes are filled.

    Contour points are pixel centres, so a decoded polygon can lose up to half a pixel
    along the boundary; parts too small to form a polygon (under 3 points) are dropped.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in contours:
        if len(contour) < 3:
            continue
        polygons.append([float(v) for v in contour.reshape(-1)])
    return polygons
