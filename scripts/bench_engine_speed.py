"""Propagation and correction-click speed: our TrackingSession against the reference predictor.

Same random-init SAM 2.1 tiny weights, same preprocessed frames, CPU, fp32, no hole
filling on either side. Prints seconds per propagated frame with 1 and 3 objects,
and the latency of a correction click on a frame encoded earlier in the
propagation, with reference/ours ratios (> 1 means we are faster).

    python scripts/bench_engine_speed.py [--image-size 1024] [--frames 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from model.build import build_model  # noqa: E402
from model.config import get_config  # noqa: E402
from model.engine.frames import preprocess_frame  # noqa: E402
from model.engine.session import Prompt, TrackingSession  # noqa: E402

H, W = 480, 640
CLICKS = {1: (150.0, 200.0), 2: (420.0, 330.0), 3: (520.0, 110.0)}
CORRECTION = (190.0, 200.0)


class ShapesVideo:
    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        yy, xx = np.mgrid[:H, :W]
        img = np.stack([xx * 200 // W, yy * 200 // H, 60 + 0 * xx], -1).astype(np.uint8)
        img[(yy - 200) ** 2 + (xx - 150 - 8 * index) ** 2 < 50**2] = (230, 50, 50)
        img[290 + 4 * index : 370 + 4 * index, 370:470] = (40, 210, 80)
        img[(abs(yy - 110) + abs(xx - 520 + 6 * index)) < 45] = (50, 70, 230)
        return img


def _click(obj_id: int) -> Prompt:
    return Prompt(points=np.array([CLICKS[obj_id]]), labels=np.array([1]))


def ours_propagation(model, video, obj_ids) -> tuple[float, TrackingSession]:
    session = TrackingSession(model, video, device="cpu", fill_hole_area=0)
    for obj_id in obj_ids:
        session.add_prompt(0, obj_id, _click(obj_id))
    times, last = [], time.perf_counter()
    for result in session.propagate(mode="full"):
        now = time.perf_counter()
        if result.frame > 0:  # frame 0 is the prompted one, nothing to track
            times.append(now - last)
        last = now
    return float(np.mean(times)), session


def ref_propagation(ref, state, obj_ids) -> float:
    for obj_id in obj_ids:
        x, y = CLICKS[obj_id]
        ref.add_new_points_or_box(state, 0, obj_id, [[x, y]], [1])
    times, last = [], time.perf_counter()
    for frame, _, _ in ref.propagate_in_video(state):
        now = time.perf_counter()
        if frame > 0:
            times.append(now - last)
        last = now
    return float(np.mean(times))


def ref_state(ref, images: torch.Tensor, folder: str):
    state = ref.init_state(folder)
    state["images"] = images
    state["cached_features"] = {}
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    from oracle import build_reference
    from PIL import Image

    torch.set_grad_enabled(False)
    ref = build_reference("sam2.1-tiny", image_size=args.image_size, video=True)
    ref.fill_hole_area = 0
    model = build_model(get_config("sam2.1-tiny", image_size=args.image_size))
    model.load_state_dict(ref.state_dict(), strict=True)
    video = ShapesVideo(args.frames)
    images = torch.cat(
        [
            preprocess_frame(video[i], args.image_size, torch.device("cpu"))
            for i in range(len(video))
        ]
    )
    folder = tempfile.mkdtemp()
    for i in range(len(video)):
        Image.fromarray(video[i]).save(Path(folder) / f"{i}.jpg")
    print(
        f"sam2.1-tiny @ {args.image_size}, CPU fp32, {torch.get_num_threads()} threads, "
        f"{args.frames} frames of {H}x{W}"
    )

    rows = []
    for obj_ids in ([1], [1, 2, 3]):
        with torch.inference_mode():
            theirs = ref_propagation(ref, ref_state(ref, images, folder), obj_ids)
        mine, _ = ours_propagation(model, video, obj_ids)
        rows.append((f"propagation, {len(obj_ids)} object(s), s/frame", theirs, mine))

    # Correction click on frame 1, encoded during the propagation that just ran.
    state = ref_state(ref, images, folder)
    with torch.inference_mode():
        ref_propagation(ref, state, [1, 2, 3])
        start = time.perf_counter()
        ref.add_new_points_or_box(state, 1, 1, [CORRECTION], [0], clear_old_points=False)
        theirs = time.perf_counter() - start
    _, session = ours_propagation(model, video, [1, 2, 3])
    start = time.perf_counter()
    session.add_prompt(
        1, 1, Prompt(points=np.array([CORRECTION]), labels=np.array([0])), clear_old=False
    )
    rows.append(("correction click on an encoded frame, s", theirs, time.perf_counter() - start))

    print(f"{'':44s} {'reference':>10s} {'ours':>10s} {'ref/ours':>9s}")
    for label, theirs, mine in rows:
        print(f"{label:44s} {theirs:10.3f} {mine:10.3f} {theirs / mine:9.2f}")


if __name__ == "__main__":
    main()
