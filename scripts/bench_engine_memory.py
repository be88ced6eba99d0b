"""Resident memory of a long propagation with default settings: CLI, app worker, reference.

Writes a 320x240 H.264 video of a moving disc (3,000 frames by default) and tracks one
clicked object through it with a random-init SAM 2.1 tiny at image size 128, three ways,
each in its own process:

- cli: `masklet track` itself (`app.headless.cli.main`), so the frame source, the caches and
  their sizes are exactly the command's defaults; RSS is sampled as it draws its
  progress bar;
- worker: the app's `WorkerClient` and `InferenceWorker` on their own thread with the
  app's real engine and video opener (Qt without a window), prompted, focused on the
  first frame (so it encodes ahead while idle, as in the app) and propagating forward;
  RSS is sampled on the worker thread at each frame;
- reference: the `sam2` package's video predictor, measured on a shorter run; its state
  growth per frame is extrapolated, plus the preprocessed frames its loader holds in
  memory for the whole video (it cannot load a long video lazily), added analytically.

For each it prints RSS at frames 100, 1,000 and 3,000 and the growth from frame 100 to
the highest RSS seen afterwards, against the goal of at most 50 MB.

    python scripts/bench_engine_memory.py [--frames 3000] [--image-size 128] [--threads N]

`--threads 1` makes the run several times faster on a machine whose cores are busy with
other work (PyTorch's threads then mostly wait for each other); it changes no cache.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

H, W = 240, 320
CHECKPOINTS = (100, 1000, 3000)
GOAL_MB = 50.0
VARIANT = "sam2.1-tiny"
CLICK = (W / 2 + 80, H / 2)  # on the disc in frame 0


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


def write_video(path: Path, num_frames: int) -> Path:
    import av

    video = MovingDiscVideo(num_frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(video[i], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssTrace:
    """RSS at the checkpoint frames, and the highest RSS seen from the first checkpoint on."""

    def __init__(self, num_frames: int) -> None:
        self.checkpoints = [n for n in CHECKPOINTS if n < num_frames] + [num_frames]
        self.at: dict[int, float] = {}
        self.highest = 0.0
        self._started = time.perf_counter()

    def sample(self, frames_done: int) -> None:
        if frames_done < self.checkpoints[0]:
            return
        rss = current_rss_mb()
        self.highest = max(self.highest, rss)
        if frames_done in self.checkpoints:
            self.at[frames_done] = rss
            rate = frames_done / (time.perf_counter() - self._started)
            print(f"  frame {frames_done}: {rss:.1f} MB ({rate:.1f} frames/s)", file=sys.stderr)

    def result(self, **extra: float) -> dict:
        return {"at": self.at, "highest": self.highest, **extra}


def run_cli(video: Path, num_frames: int, image_size: int) -> dict:
    """`masklet track` on the video, as a user runs it; RSS sampled by its progress bar."""
    import app.headless.cli as cli

    trace = RssTrace(num_frames)

    class SamplingBar(cli.ProgressBar):
        def __call__(self, done: int, total: int) -> None:
            if self._label == "tracking":
                trace.sample(done)

    cli.ProgressBar = SamplingBar
    with tempfile.TemporaryDirectory() as folder:
        prompts = Path(folder) / "prompts.json"
        x, y = CLICK
        prompts.write_text(
            json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 0, "points": [[x, y, 1]]}]}]})
        )
        argv = ["track", str(video), "--prompts", str(prompts)]
        argv += ["--checkpoint", f"random:{VARIANT}", "--image-size", str(image_size)]
        argv += ["--format", "coco", "--out", str(Path(folder) / "masks.json")]
        code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"masklet track exited with {code}")
    return trace.result(peak=peak_rss_mb())


def run_worker(video: Path, num_frames: int, image_size: int) -> dict:
    """The app's worker with the app's engine, video opener and defaults, without a window."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, Qt

    from app.gui.worker.client import WorkerClient
    from app.gui.worker.engine import random_model_loader, real_engine
    from app.video import open_video

    qt_app = QCoreApplication.instance() or QCoreApplication([])
    client = WorkerClient(real_engine(random_model_loader(VARIANT, image_size=image_size)))
    trace = RssTrace(num_frames)
    failures: list[str] = []

    def wait_for(signal) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        client.job_failed.connect(lambda e: (failures.append(e.message), loop.quit()))
        loop.exec()
        if failures:
            raise RuntimeError(f"the worker failed: {failures[0]}")

    # On the worker thread, as each frame is done: what the worker holds, not the queue.
    client._worker.propagation_progress.connect(
        lambda p: trace.sample(p.done), Qt.ConnectionType.DirectConnection
    )
    try:
        client.load_model("random-init", "cpu")
        # The app's default video opener: `open_video` with its default cache.
        client.open_video(lambda: open_video(video))
        wait_for(client.session_opened)
        client.set_prompts(0, 1, [(*CLICK, 1)], None)
        wait_for(client.mask_ready)
        client.focus(0)
        client.propagate(0, "forward")
        wait_for(client.propagation_finished)
        session = client._worker._session
        cached = {"feature_frames": session.cache_frames_used, "peak": peak_rss_mb()}
    finally:
        client.shutdown()
    del qt_app
    return trace.result(**cached)


def run_reference(num_frames: int, image_size: int) -> dict:
    """The reference predictor's RSS every 50 frames; frames synthesised, not preloaded."""
    import torch
    from oracle import build_reference
    from PIL import Image

    from model.engine.frames import preprocess_frame

    model = build_reference(VARIANT, image_size=image_size, video=True)
    video = MovingDiscVideo(num_frames)

    class LazyImages:
        def __len__(self) -> int:
            return num_frames

        def __getitem__(self, index: int) -> torch.Tensor:
            return preprocess_frame(video[index], image_size, torch.device("cpu"))[0]

    with torch.inference_mode():
        with tempfile.TemporaryDirectory() as folder:
            Image.fromarray(video[0]).save(Path(folder) / "0.jpg")
            state = model.init_state(folder)
        state["images"], state["num_frames"] = LazyImages(), num_frames
        model.add_new_points_or_box(state, 0, 1, np.array([CLICK]), np.array([1]))
        rss = {}
        for frame, _, _ in model.propagate_in_video(state):
            if (frame + 1) % 50 == 0:
                rss[frame + 1] = current_rss_mb()
    return {"at": rss}


def run_child(kind: str, args: argparse.Namespace, video: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--image-size", str(args.image_size)]
    command += ["--threads", str(args.threads)]
    frames = args.reference_frames if kind == "reference" else args.frames
    command += ["--frames", str(frames)] + ([] if video is None else ["--video", str(video)])
    print(f"{kind}: running ...", file=sys.stderr, flush=True)
    out = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind}: the measuring process failed ({out.returncode})")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["at"] = {int(k): v for k, v in result["at"].items()}
    return result


def reference_row(ref: dict, num_frames: int, image_size: int) -> tuple[dict[int, float], str]:
    """RSS at our checkpoints: measured where the short run reached, else extrapolated."""
    rss = ref["at"]
    first, last = min(rss), max(rss)
    per_frame = (rss[last] - rss[first]) / (last - first)
    # init_state holds every frame as (3, S, S) float32 for the whole session.
    images_per_frame = 3 * image_size * image_size * 4 / 2**20
    row = {}
    for n in RssTrace(num_frames).checkpoints:
        state = rss.get(n, rss[last] + per_frame * (n - last))
        row[n] = state + images_per_frame * n
    note = (
        f"measured to frame {last}: state +{per_frame * 1024:.1f} KB/frame, plus its loader's "
        f"{images_per_frame * 1024:.0f} KB/frame of preprocessed frames; beyond {last} extrapolated"
    )
    return row, note


def print_table(args: argparse.Namespace, ours: dict[str, dict], ref: dict) -> None:
    points = RssTrace(args.frames).checkpoints
    first, final = points[0], points[-1]
    print(
        f"\nRSS, one object tracked forward through {args.frames} frames of {W}x{H} H.264, "
        f"{VARIANT} (random init) @ {args.image_size}, default settings, "
        f"{args.threads or 'default'} PyTorch threads"
    )
    header = "".join(f"{'frame ' + str(n):>13}" for n in points)
    print(f"{'path':<12}{header}{'growth':>11}  goal <= {GOAL_MB:.0f} MB")
    for name, result in ours.items():
        cells = "".join(f"{result['at'][n]:>10.1f} MB" for n in points)
        growth = result["highest"] - result["at"][first]
        verdict = "PASS" if growth <= GOAL_MB else "FAIL"
        print(f"{name:<12}{cells}{growth:>+8.1f} MB  {verdict}")
    row, note = reference_row(ref, args.frames, args.image_size)
    cells = "".join(f"{row[n]:>10.1f} MB" for n in points)
    print(f"{'reference':<12}{cells}{row[final] - row[first]:>+8.1f} MB  (extrapolated)")
    print(f"growth: from frame {first} to the highest RSS after it; reference: {note}")
    for name, result in ours.items():
        extra = ", ".join(f"{k} {v:.0f}" for k, v in result.items() if k not in ("at", "highest"))
        print(f"{name}: {extra} (peak in MB, including start-up and export)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--reference-frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: its default)")
    parser.add_argument("--child", choices=("cli", "worker", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None and args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if args.child == "reference":
        print(json.dumps(run_reference(args.frames, args.image_size)))
        return
    if args.child is not None:
        run = run_cli if args.child == "cli" else run_worker
        print(json.dumps(run(args.video, args.frames, args.image_size)))
        return
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(Path(folder) / "disc.mp4", args.frames)
        ours = {kind: run_child(kind, args, video) for kind in ("cli", "worker")}
    ref = run_child("reference", args)
    print_table(args, ours, ref)


if __name__ == "__main__":
    main()
