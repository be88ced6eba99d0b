"""Reopening a tracked project: re-tracking from the keyframes versus restoring the state store.

Tracks one object through a synthetic video, saves the session's state, then times what
pressing T costs in a fresh session without the store (every frame re-tracked) and with it
(the index restored; nothing left to compute), and checks that both end with the same
masks. Also prints the store's size per object-frame, from the tensor shapes and on disk.

    python scripts/bench_resume.py --frames 200 --image-size 256
    python scripts/bench_resume.py --frames 3 --image-size 1024   # size per object-frame at 1024
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

from model.engine.session import Prompt, TrackingSession  # noqa: E402
from model.engine.state_store import StateIdentity  # noqa: E402
from model.sam2.build import build_model  # noqa: E402
from model.sam2.config import get_config  # noqa: E402

H, W = 240, 320
ID = StateIdentity(video="bench-video", checkpoint="bench-random-init")


class Video:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        img = np.full((H, W, 3), 40, np.uint8)
        x = 20 + (i * 2) % (W - 80)
        img[80:150, x : x + 60] = (220, 90, 50)
        return img


def _tensor_bytes(model) -> int:
    s, cfg = model.image_size, model.cfg
    logits = 4 * (s // 4) ** 2
    return logits + 4 * cfg.hidden_dim + 4 + 2 * cfg.mem_dim * (s // 16) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--variant", default="sam2.1-tiny")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model(get_config(args.variant, image_size=args.image_size)).eval()
    prompt = Prompt(points=np.array([[50.0, 115.0]]), labels=np.array([1]))
    video = Video(args.frames)

    first = TrackingSession(model, video, device="cpu")
    first.add_prompt(0, 1, prompt)
    started = time.perf_counter()
    list(first.propagate())
    tracked_s = time.perf_counter() - started
    folder = tempfile.mkdtemp(prefix="bench-resume-")
    started = time.perf_counter()
    report = first.save_state(folder, ID)
    save_s = time.perf_counter() - started

    # The user reopens, corrects frame `k` and presses T there. Without a store the engine
    # must first re-track from the keyframe up to `k` to give the same masks.
    k = min(args.frames - 1, round(args.frames * 137 / 200))
    correction = Prompt(points=np.array([[60.0, 200.0]]), labels=np.array([0]))
    retrack = TrackingSession(model, video, device="cpu")
    started = time.perf_counter()
    retrack.add_prompt(0, 1, prompt)
    list(retrack.propagate())
    retrack.add_prompt(k, 1, correction)
    list(retrack.propagate(k))
    retrack_s = time.perf_counter() - started

    resumed = TrackingSession(model, video, device="cpu")
    started = time.perf_counter()
    resumed.restore_state(folder, ID)
    resumed.add_prompt(0, 1, prompt)  # the app's re-send: answered from the store
    restore_only_s = time.perf_counter() - started
    resumed.add_prompt(k, 1, correction)
    list(resumed.propagate(k))
    restore_s = time.perf_counter() - started
    same = all(np.array_equal(retrack.mask(1, f), resumed.mask(1, f)) for f in range(args.frames))

    masks = sum(o.mask.nbytes for o in first._tracks[1].outputs.values())
    per_frame_disk = (report.bytes - masks) / args.frames
    print(f"{args.variant} at {args.image_size}, {args.frames} frames, 1 object (CPU)")
    print(f"first tracking: {tracked_s:.2f} s; saving the store: {save_s:.2f} s")
    print(f"store: {report.bytes / 2**20:.2f} MiB, {report.bytes / args.frames / 2**10:.1f} KiB")
    print(
        f"  per object-frame: tensors {_tensor_bytes(model)} B from shapes, "
        f"{per_frame_disk:.0f} B on disk, + packed mask {masks / args.frames:.0f} B"
    )
    print(f"reopen, correct frame {k}, T: without the store {retrack_s:.2f} s")
    print(f"                         with the store    {restore_s:.2f} s", end=" ")
    print(f"(restoring: {restore_only_s:.3f} s)")
    print(f"time saved: {retrack_s - restore_s:.2f} s ({retrack_s / restore_s:.1f}x)")
    print(f"masks identical: {same}")


if __name__ == "__main__":
    main()
