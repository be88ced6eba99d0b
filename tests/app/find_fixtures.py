"""Fixtures of the `--find` tests: a clip with an object entering mid-clip (written with
PyAV), a small random-init SAM 3 finder saved as a checkpoint, thresholds pinned to its scores,
and a colour finder whose instances are known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from model.engine.find_association import new_detections

H, W, N = 96, 128, 8
ENTERS = 3  # the green square appears on this frame


def write_clip(path: Path) -> Path:
    """N frames of 128x96 H.264: a red square drifting right on every frame, a green one
    from frame ENTERS on."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=6)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            rgb = np.full((H, W, 3), 40, np.uint8)
            rgb[10:40, 10 + 4 * i : 40 + 4 * i] = (230, 40, 40)
            if i >= ENTERS:
                rgb[55:85, 90 - 3 * i : 120 - 3 * i] = (40, 220, 60)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def save_small_finder(path: Path, seed: int = 0, *, wrapped: bool = True) -> Path:
    """A random-init small finder as a sam3.pt: `{"model": {"detector." + k: v}}` (or bare)."""
    from model.sam3.finder import Sam3Finder, small_finder_config

    torch.manual_seed(seed)
    finder = Sam3Finder(cfg=small_finder_config())
    state = {f"detector.{k}": v for k, v in finder.state_dict().items()}
    torch.save({"model": state} if wrapped else state, path)
    return path


def first_frame(video: Path) -> np.ndarray:
    """Frame 0 as the headless run decodes it."""
    from app.video import open_video

    with open_video(video) as reader:
        return np.array(reader[0])


def pinned_threshold(finder_path: Path, video: Path, phrase: str, objects: int) -> float:
    """A threshold just under the k-th best score of the finder on frame 0, for the smallest
    k whose k best instances make `objects` objects (overlapping instances make one: a
    random-init finder's masks are large blobs)."""
    from model.sam3.checkpoint import load_finder

    found = load_finder(finder_path).find(first_frame(video), phrase, threshold=0.0)
    scores, masks = found.scores.tolist(), list(found.masks.numpy())
    for k in range(1, len(scores)):
        if len(new_detections(masks[:k], [])) == objects and scores[k - 1] > scores[k]:
            return (scores[k - 1] + scores[k]) / 2
    raise AssertionError(f"no threshold gives {objects} objects: {scores}")


@dataclass(frozen=True)
class _Instances:
    masks: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    truncated: bool = False


class ColourFinder:
    """Finds "red" and "green" by colour: one instance, the pixels of that colour, scored
    0.9 (red) or 0.8 (green); records each call's frame key and precision."""

    SCORES = {"red": 0.9, "green": 0.8}

    def __init__(self) -> None:
        self.calls: list[tuple[object, str, str]] = []

    def find(self, frame, phrase=None, threshold=0.5, *, frame_key=None, precision="exact"):
        self.calls.append((frame_key, phrase, precision))
        r, g = frame[..., 0].astype(int), frame[..., 1].astype(int)
        mask = (r > 150) & (g < 110) if phrase == "red" else (g > 150) & (r < 110)
        if not mask.any() or self.SCORES[phrase] <= threshold:
            return _Instances(torch.zeros(0, *mask.shape, dtype=torch.bool), torch.zeros(0, 4),
                              torch.zeros(0))  # fmt: skip
        return _Instances(torch.from_numpy(mask)[None], torch.zeros(1, 4),
                          torch.tensor([self.SCORES[phrase]]))  # fmt: skip
