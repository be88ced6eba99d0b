"""Peak memory of a long propagation: our TrackingSession against the reference predictor.

Propagates one object through a generated video (frames synthesised on demand),
random-init SAM 2.1 tiny at a reduced image size, and prints peak RSS at frames
100, 1,000 and 5,000. Growth after frame 100 must stay under 10% of the model's own
footprint. The reference's cost is measured on a shorter run in a subprocess and
extrapolated per frame; its frame loader would also hold every preprocessed frame
in memory, which is added analytically (it cannot fit a long video).

    python scripts/bench_engine_memory.py [--frames 5000] [--image-size 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
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
from model.frames import preprocess_frame  # noqa: E402
from model.session import Prompt, TrackingSession  # noqa: E402

H, W = 240, 320
CHECKPOINTS = (100, 1000, 5000)


class MovingDiscVideo:
    """A disc circling over a gradient, generated on demand (nothing is kept)."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        yy, xx = np.mgrid[:H, :W]
        self._yy, self._xx = yy, xx
        self._background = np.stack([xx * 255 // W, yy * 255 // H, 80 + 0 * xx], -1)

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        img = self._background.astype(np.uint8)
        cx = W / 2 + 80 * np.cos(index / 40)
        cy = H / 2 + 60 * np.sin(index / 40)
        img[(self._yy - cy) ** 2 + (self._xx - cx) ** 2 < 30**2] = (230, 40, 40)
        return img

    def first_click(self) -> Prompt:
        return Prompt(points=np.array([[W / 2 + 80, H / 2]]), labels=np.array([1]))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def model_mb(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20


def run_ours(num_frames: int, image_size: int) -> None:
    torch.manual_seed(0)
    model = build_model(get_config("sam2.1-tiny", image_size=image_size))
    video = MovingDiscVideo(num_frames)
    # A small feature cache: propagation needs only the current frame's features.
    session = TrackingSession(model, video, device="cpu", cache_bytes=8 << 20)
    session.add_prompt(0, 1, video.first_click())
    footprint = model_mb(model)
    print(f"ours: sam2.1-tiny @ {image_size}, model {footprint:.1f} MB, video {H}x{W}")
    start, peaks = time.perf_counter(), {}
    for result in session.propagate(mode="full"):
        n = result.frame + 1
        if n in CHECKPOINTS or n == num_frames:
            peaks[n] = peak_rss_mb()
            rate = n / (time.perf_counter() - start)
            print(
                f"  frame {n:5d}: peak RSS {peaks[n]:8.1f} MB, current {current_rss_mb():8.1f} MB"
                f"  ({rate:.1f} frames/s)"
            )
    first = min(peaks)
    growth = peaks[max(peaks)] - peaks[first]
    print(
        f"  growth after frame {first}: {growth:.1f} MB = {100 * growth / footprint:.1f}% of the "
        f"model ({'OK' if growth < 0.1 * footprint else 'OVER'} the 10% bound)"
    )


def run_reference(num_frames: int, image_size: int) -> dict:
    """Runs in a subprocess: the reference's RSS after `num_frames` tracked frames."""
    from oracle import build_reference
    from PIL import Image

    model = build_reference("sam2.1-tiny", image_size=image_size, video=True)
    video = MovingDiscVideo(num_frames)

    class LazyImages:
        def __len__(self) -> int:
            return num_frames

        def __getitem__(self, index: int) -> torch.Tensor:
            return preprocess_frame(video[index], image_size, torch.device("cpu"))[0]

    with tempfile.TemporaryDirectory() as folder:
        Image.fromarray(video[0]).save(Path(folder) / "0.jpg")
        state = model.init_state(folder)
    state["images"], state["num_frames"] = LazyImages(), num_frames
    click = video.first_click()
    model.add_new_points_or_box(state, 0, 1, click.points, click.labels)
    rss = {}
    for frame, _, _ in model.propagate_in_video(state):
        if (frame + 1) % 50 == 0:
            rss[frame + 1] = current_rss_mb()
    return rss


def reference_summary(num_frames: int, image_size: int, ref_frames: int) -> None:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--reference-child",
            str(ref_frames),
            "--image-size",
            str(image_size),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rss = {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    frames = sorted(rss)
    per_frame = (rss[frames[-1]] - rss[frames[0]]) / (frames[-1] - frames[0])
    images_per_frame = 3 * image_size * image_size * 4 / 2**20
    print(
        f"reference: measured {frames[0]}..{frames[-1]} frames, state grows "
        f"{per_frame * 1024:.1f} KB/frame; its loader also holds {images_per_frame * 1024:.0f} "
        "KB/frame of preprocessed frames"
    )
    for n in CHECKPOINTS:
        if n > num_frames:
            continue
        tag = "measured" if n in rss else "extrapolated"
        state = rss.get(n, rss[frames[-1]] + per_frame * (n - frames[-1]))
        print(
            f"  frame {n:5d}: RSS {state:8.1f} MB ({tag}) + frames {images_per_frame * n:8.1f} MB"
            f" = {state + images_per_frame * n:8.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--reference-frames", type=int, default=300)
    parser.add_argument("--reference-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_child:
        with torch.inference_mode():
            print(json.dumps(run_reference(args.reference_child, args.image_size)))
        return
    run_ours(args.frames, args.image_size)
    reference_summary(args.frames, args.image_size, args.reference_frames)


if __name__ == "__main__":
    main()
