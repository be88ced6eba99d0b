"""How much faster a tracked frame is at input size 768 and 512 than at 1024 (Model > Input Size).

SAM 2.1 tiny at random init on the CPU, the app's session defaults, frames of 480 x 640,
one object clicked on frame 0 and tracked `--frames` frames. The three sizes step one
frame each in turn (`bench_common.interleaved`), so the host's changes of speed reach all
of them alike; seconds per frame are the median of the frames after the memory bank has
filled, pooled over `--repeats` propagations. The factors printed are what
`app.gui.window.input_size_menu` shows in its tooltips.

    python scripts/bench_input_size.py [--frames 10] [--repeats 2] [--sizes 1024,768,512]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from model.kernels.allocator import retain_freed_memory  # noqa: E402
from model.kernels.threads import configure_threads, prepare_environment  # noqa: E402

prepare_environment()
retain_freed_memory()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_common import ShapesVideo, click, interleaved  # noqa: E402

from model.engine.session import Prompt, TrackingSession  # noqa: E402
from model.sam2.build import build_model  # noqa: E402
from model.sam2.config import get_config  # noqa: E402

WARM_FRAMES = 4  # frames before the memory bank is near full; cheaper, left out


def _run(model: torch.nn.Module, video: ShapesVideo, frames: int):
    session = TrackingSession(model, video, device="cpu")
    x, y = click(1)
    prompt = Prompt(points=np.array([[x, y]], np.float32), labels=np.array([1], np.int32))
    session.add_prompt(0, 1, prompt)
    with torch.inference_mode():
        yield from session.propagate(0, "forward", mode="full")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="1024,768,512")
    args = parser.parse_args()
    configure_threads()
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.manual_seed(0)
    base = build_model(get_config("sam2.1-tiny")).eval()
    models = {}
    for size in sizes:
        models[size] = build_model(get_config("sam2.1-tiny", image_size=size)).eval()
        models[size].load_state_dict(base.state_dict())
    video = ShapesVideo(args.frames + 1)
    pooled: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(args.repeats):
        runs = {s: _run(models[s], video, args.frames) for s in sizes}
        times = interleaved(runs, args.frames + 1)
        for s in sizes:
            pooled[s] += times[s][1 + WARM_FRAMES :]
    ref = float(np.median(pooled[sizes[0]]))
    for s in sizes:
        med = float(np.median(pooled[s]))
        print(f"{s:5d}: {med:.3f} s a frame (n={len(pooled[s])}), {ref / med:.2f}x of {sizes[0]}")


if __name__ == "__main__":
    main()
