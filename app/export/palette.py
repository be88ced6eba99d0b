"""The DAVIS / PASCAL VOC colour palette for indexed annotation PNGs.

Index 0 is black (background); every other index gets a colour whose bits are the
index's bits dealt out round-robin to R, G and B from the most significant bit down,
which keeps low indices (the few objects of a typical video) far apart in colour.
"""

from __future__ import annotations

import numpy as np

__all__ = ["davis_palette", "palette_color"]


def davis_palette(num_colors: int = 256) -> np.ndarray:
    """Return the palette as a (num_colors, 3) uint8 array; index 1 is (128, 0, 0)."""
    if not 1 <= num_colors <= 256:
        raise ValueError(f"num_colors must be in 1..256, got {num_colors}")
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for index in range(num_colors):
        rgb = [0, 0, 0]
        bits = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= (bits & 1) << shift
                bits >>= 1
        palette[index] = rgb
    return palette


def palette_color(index: int) -> tuple[int, int, int]:
    """The palette colour of one index as an (R, G, B) tuple."""
    if not 0 <= index <= 255:
        raise ValueError(f"palette index must be in 0..255, got {index}")
    r, g, b = (int(v) for v in davis_palette(index + 1)[index])
    return r, g, b
