"""Batch throughput on this machine: frames/s with 1 and 2 workers, and the scaling efficiency.

Generates small clips, starts one local Ray, and runs the same batch (a random-init model,
CPU, fp32) with 1 and then 2 workers into fresh output folders. Frames/s counts every frame
tracked and exported over the batch's wall time, worker start-up and model loads included,
as a user would see it (Ray's own first start-up is paid before, untimed). Efficiency is
(2-worker frames/s) / (2 x 1-worker frames/s).

Two workers only scale if the machine has the cores for them. Each worker gets its share of
the CPUs Ray sees as torch threads, so on a 2-core machine one worker runs two threads and
two workers one each; when other jobs load the cores, a two-thread worker stalls on its
threads' barriers and the one-worker figure drops far more than the two-worker one.

    python scripts/bench_batch.py [--videos 8] [--frames 16] [--image-size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "app"))

from video_fixtures import write_video  # noqa: E402

from app.headless.batch.manifest import load_manifest  # noqa: E402
from app.headless.batch.scheduler import BatchSettings, run_batch  # noqa: E402


def make_manifest(folder: Path, videos: int, frames: int) -> Path:
    lines = []
    for i in range(videos):
        video = write_video(folder / f"clip{i}.mp4", frames=frames, width=160, height=120)
        prompts = folder / f"clip{i}.json"
        objects = [{"id": 1, "prompts": [{"frame": 0, "points": [[12, 60, 1]]}]}]
        prompts.write_text(json.dumps({"objects": objects}))
        lines.append(json.dumps({"video": video.name, "prompts": prompts.name}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def measure(manifest: Path, out: Path, workers: int, args: argparse.Namespace) -> float:
    """Frames/s of one batch run with `workers` workers."""
    checkpoint = f"random:{args.variant}"
    settings = BatchSettings(checkpoint, args.image_size, "png", out, workers=workers)
    started = time.perf_counter()
    summary = run_batch(load_manifest(manifest), settings)
    elapsed = time.perf_counter() - started
    if summary.failed or summary.finished != args.videos:
        raise SystemExit(f"the batch did not finish cleanly: {summary}")
    return args.videos * args.frames / elapsed


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--variant", default="sam2.1-tiny")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            manifest = make_manifest(folder, args.videos, args.frames)
            # Ray's first actor start (runtime env, worker pool) is paid once, untimed.
            warm = BatchSettings(f"random:{args.variant}", args.image_size, "png", folder / "w")
            run_batch(load_manifest(manifest)[:1], warm)
            fps = {n: measure(manifest, folder / f"out{n}", n, args) for n in (1, 2)}
    finally:
        ray.shutdown()
    print(
        f"{args.videos} videos x {args.frames} frames, random {args.variant} at "
        f"{args.image_size} px, CPU fp32, {cpus} CPUs seen by Ray"
    )
    for n, value in fps.items():
        print(f"  {n} worker{'s' if n > 1 else ''}: {value:6.2f} frames/s")
    print(f"  scaling efficiency (2 workers): {fps[2] / (2 * fps[1]):.0%}")


if __name__ == "__main__":
    main()
