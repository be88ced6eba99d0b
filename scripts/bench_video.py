"""Benchmark of app.video on a long 1080p H.264 file: open time, random access, sequential fps.

    python scripts/bench_video.py [--minutes 10] [--dir DIR] [--samples 50] [--frames 1800]
                                  [--rounds 3] [--malloc default|pinned|both]

The test file (1080p, 30 fps, 2 s GOPs, x264 ultrafast) is generated once and cached in DIR
(default: <tmp>/masklet-bench); generating 10 minutes takes several minutes on 2 cores.
Every frame shows its own number as a row of black/white blocks, so each frame read is
checked to be the frame asked for.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.video import DEFAULT_CACHE_BYTES, VideoFileReader  # noqa: E402

WIDTH, HEIGHT, FPS = 1920, 1080, 30
CODE_BITS = 16
CODE_BLOCK = 48  # px: survives ultrafast coding easily


def _yuv_backgrounds(count: int) -> list[np.ndarray]:
    """A few textured yuv420p pictures, (H * 3/2, W) uint8, made once and reused."""
    rng = np.random.default_rng(0)
    backgrounds = []
    for _ in range(count):
        cells = rng.integers(0, 255, (HEIGHT // 60, WIDTH // 60, 3), dtype=np.uint8)
        rgb = np.ascontiguousarray(np.repeat(np.repeat(cells, 60, axis=0), 60, axis=1))
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        backgrounds.append(frame.to_ndarray())
    return backgrounds


def _draw_code(luma: np.ndarray, i: int) -> None:
    for bit in range(CODE_BITS):
        x = bit * CODE_BLOCK
        luma[:CODE_BLOCK, x : x + CODE_BLOCK] = 235 if (i >> bit) & 1 else 16


def read_code(rgb: np.ndarray) -> int:
    """The frame number drawn by `_draw_code` into an RGB frame."""
    code = 0
    for bit in range(CODE_BITS):
        x = bit * CODE_BLOCK
        block = rgb[8 : CODE_BLOCK - 8, x + 8 : x + CODE_BLOCK - 8]
        code |= int(block.mean() > 128) << bit
    return code


def generate(path: Path, minutes: float) -> float:
    """Write the test video; returns seconds taken. Written under a temporary name first."""
    n = round(minutes * 60 * FPS)
    backgrounds = _yuv_backgrounds(4)
    partial = path.with_suffix(".partial.mp4")
    start = time.perf_counter()
    with av.open(str(partial), "w") as container:
        options = {"preset": "ultrafast", "g": str(2 * FPS), "crf": "23"}
        stream = container.add_stream("libx264", rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.thread_type = "AUTO"
        for i in range(n):
            yuv = backgrounds[(i // 90) % len(backgrounds)].copy()
            x = (7 * i) % (WIDTH - 200)
            yuv[400:600, x : x + 200] = (5 * i) % 256  # a moving square in the luma plane
            _draw_code(yuv, i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                container.mux(packet)
            if i % (60 * FPS) == 0:
                print(f"  generating: {i / FPS / 60:.0f} of {minutes:g} min", flush=True)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return time.perf_counter() - start


def bench_open(path: Path) -> VideoFileReader:
    start = time.perf_counter()
    reader = VideoFileReader(path)
    opened = time.perf_counter()
    frame = reader[0]
    done = time.perf_counter()
    assert read_code(frame) == 0
    print(
        f"open + frame 0:        {(done - start) * 1000:8.1f} ms  (open and index "
        f"{len(reader)} frames {(opened - start) * 1000:.1f} ms, frame 0 "
        f"{(done - opened) * 1000:.1f} ms)"
    )
    return reader


def bench_random(path: Path, samples: int, seed: int) -> None:
    with VideoFileReader(path, cache_bytes=0) as reader:
        targets = random.Random(seed).sample(range(len(reader)), samples)
        times = []
        for i in targets:
            start = time.perf_counter()
            frame = reader[i]
            times.append(time.perf_counter() - start)
            if read_code(frame) != i % (1 << CODE_BITS):
                raise SystemExit(f"wrong frame: asked for {i}, got {read_code(frame)}")
        stats = reader.stats
    ms = sorted(t * 1000 for t in times)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(
        f"random access ({samples}): median {statistics.median(ms):6.1f} ms, p90 {p90:6.1f} ms, "
        f"max {ms[-1]:6.1f} ms  ({stats.seeks} seeks, {stats.packets / samples:.1f} "
        f"packets decoded per frame, all frames verified)"
    )


# glibc's malloc moves its mmap threshold as big blocks come and go: a consumer that keeps
# one 6 MB frame while getting the next makes it page-fault on every new frame (about 2 ms),
# with any reader. Pinned thresholds show the cost without that, for both readers alike.
PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


# Readers timed sequentially: (label, our cache size or None for a plain PyAV loop, thread type)
SEQUENTIAL = {
    "ours": ("ours", DEFAULT_CACHE_BYTES, None),
    "ours-no-cache": ("ours, cache_bytes=0", 0, None),
    "SLICE": ("plain PyAV loop, thread_type=SLICE (default)", None, "SLICE"),
    "AUTO": ("plain PyAV loop, thread_type=AUTO", None, "AUTO"),
}


def bench_sequential(path: Path, frames: int, rounds: int, allocators: list[str]) -> None:
    """Ours and plain PyAV loops in alternation, so that load from other processes spreads
    evenly, each run in a fresh process, as a user's would be. Opening is not timed. CPU
    time (all threads) per frame is reported too, being less sensitive to load.

    Ours fills its cache (512 MiB, about 170 1080p frames) as it goes: faulting in that
    memory is a one-time cost per reader, which `ours, cache_bytes=0` leaves out."""
    for allocator in allocators:
        env = PINNED_MALLOC if allocator == "pinned" else {}
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in SEQUENTIAL}
        for _ in range(rounds):
            for name in runs:
                runs[name].append(_in_fresh_process(env, path, frames, name))
        print(
            f"sequential, {frames} frames from frame 0, median of {rounds} runs, "
            f"{allocator} malloc thresholds:"
        )
        _print_sequential(runs, frames)


def _in_fresh_process(
    env: dict[str, str], path: Path, frames: int, name: str
) -> tuple[float, float, int]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # spawned processes start with the environment of this moment
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            _, cache_bytes, thread_type = SEQUENTIAL[name]
            if thread_type is None:
                return pool.submit(_read_ours, path, frames, cache_bytes).result()
            return pool.submit(_read_plain, path, frames, thread_type).result()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _print_sequential(runs: dict[str, list[tuple[float, float, int]]], frames: int) -> None:
    ours = statistics.median(r[0] for r in runs["ours"])
    for name, results in runs.items():
        fps = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        faults = statistics.median(r[2] for r in results)
        label = SEQUENTIAL[name][0]
        ratio = f";  ours / this = {ours / fps:.2f}" if name != "ours" else ""
        print(
            f"  {label:46}: {fps:6.1f} fps, {cpu:5.2f} ms CPU/frame, "
            f"{faults / frames:5.0f} page faults/frame{ratio}"
        )


class _Stopwatch:
    """Wall and CPU (all threads of this process) time of a `with` block."""

    def __enter__(self) -> _Stopwatch:
        self.wall, self.cpu, self.faults = time.perf_counter(), _cpu_seconds(), _faults()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu_seconds() - self.cpu
        self.faults = _faults() - self.faults

    def rates(self, frames: int) -> tuple[float, float, int]:
        """(frames per second, CPU milliseconds per frame, minor page faults)."""
        return frames / self.wall, self.cpu / frames * 1000, self.faults


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read_ours(path: Path, frames: int, cache_bytes: int) -> tuple[float, float, int]:
    with VideoFileReader(path, cache_bytes=cache_bytes) as reader, _Stopwatch() as watch:
        for i in range(frames):
            frame = reader[i]
    if read_code(frame) != frames - 1 or reader.stats.seeks:
        raise SystemExit("sequential read went wrong")
    return watch.rates(frames)


def _read_plain(path: Path, frames: int, thread_type: str) -> tuple[float, float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        with _Stopwatch() as watch:
            # Like `_read_ours`, hold each frame until the next one is there, as a consumer
            # does; that alone changes how the allocator serves 1080p buffers.
            for _, frame in zip(range(frames), container.decode(stream), strict=False):
                rgb = frame.to_ndarray(format="rgb24")
    if read_code(rgb) != frames - 1:
        raise SystemExit("plain sequential read went wrong")
    return watch.rates(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the test video")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "masklet-bench")
    parser.add_argument("--samples", type=int, default=50, help="random frames to time")
    parser.add_argument("--frames", type=int, default=1800, help="frames to read sequentially")
    parser.add_argument("--rounds", type=int, default=3, help="sequential runs of each reader")
    parser.add_argument(
        "--malloc",
        choices=["default", "pinned", "both"],
        default="both",
        help="glibc malloc thresholds for the sequential runs",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"h264-1080p-{args.minutes:g}min-gop{2 * FPS}.mp4"
    if path.exists():
        print(f"test video: {path} (cached)")
    else:
        print(f"test video: generating {path}")
        print(f"generation: {generate(path, args.minutes):.1f} s")
    print(f"size: {path.stat().st_size / 1e6:.1f} MB, {av.__name__} {av.__version__}")
    reader = bench_open(path)
    expected = round(args.minutes * 60 * FPS)
    if len(reader) != expected:
        raise SystemExit(f"frame count {len(reader)}, expected {expected}")
    reader.close()
    bench_random(path, args.samples, args.seed)
    allocators = ["default", "pinned"] if args.malloc == "both" else [args.malloc]
    bench_sequential(path, args.frames, args.rounds, allocators)
    return 0


if __name__ == "__main__":
    sys.exit(main())
