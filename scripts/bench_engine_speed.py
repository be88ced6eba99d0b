"""Propagation speed as users get it: ours (the app's defaults) against the reference and
Hugging Face transformers, per stage against the compute floor, clicks and cancel.

SAM 2.1 tiny, random init (the same weights for ours and the reference; transformers'
`Sam2VideoModel` at random init from its default config, which is tiny), CPU, frames
of 480 x 640 preprocessed once and shared. Each propagation tracks `--frames` frames
after the prompted one; seconds per frame are the steady state: the mean of the last
4 frames (the memory bank is full from the 8th: 7 memories, up to 16 object pointers).
For each object count the runs step one frame each in turn, so that the host's changes
of speed (on the 2-core VM here a GEMM drops from 270 to 160 GFLOP/s for seconds at a
time) reach ours and the peers alike and the ratios stay about the runs.

- ours "exact": the session the app opens (`app.gui.worker.engine`; the CLI passes the same
  defaults), float32 with its default clean-up (holes up to 8 px filled);
- ours "fast": `precision="fast"` (bf16) where this build has it;
- the reference `sam2==1.1.0` with its own defaults (`fill_hole_area=8`: its clean-up
  needs its CUDA extension, so on CPU it warns and skips it);
- transformers (`pip install .[bench]`), fp32, its outputs resized to the video as ours.

Per stage: our seconds per frame against the stage's floor, its FLOPs (counted with
`torch.utils.flop_counter` on one steady-state frame) over the GEMM throughput
measured here in the same precision. Clicks: 10 correction clicks on a tracked frame
whose features are already cached (`encode_frame` first, so the click is timed, not
the encoder): p50 and p95. Cancel: the stop request is raised in the middle of a
steady-state frame; the time from it to the generator returning.

    python scripts/bench_engine_speed.py [--image-size 1024] [--frames 12] [--objects 1,3,10]
        [--ref-objects 1,3] [--skip-transformers] [--threads-check]
    smoke run: python scripts/bench_engine_speed.py --image-size 256 --frames 4 --objects 1,3
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from model.kernels.allocator import retain_freed_memory  # noqa: E402
from model.kernels.threads import configure_threads, prepare_environment  # noqa: E402

# As the app and the CLI do: OpenMP's wait policy must be set before torch loads, and
# freed memory is kept for reuse (the reference runs in this process and gets it too).
prepare_environment()
retain_freed_memory()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_common import (  # noqa: E402
    GemmCeiling,
    H,
    ShapesVideo,
    StageClock,
    W,
    click,
    count_flops,
    interleaved,
    steady,
)
from bench_peers import RefRun, hf_available, hf_frames  # noqa: E402
from bench_report import report  # noqa: E402

from model.engine.frames import preprocess_frame  # noqa: E402
from model.engine.session import Prompt, TrackingSession  # noqa: E402
from model.sam2.build import build_model  # noqa: E402
from model.sam2.config import get_config  # noqa: E402

GOAL_SIZE, GOAL_FRAMES = 1024, 12
CLICKS = 10
CANCEL_SLACK = 3


@dataclass
class OursRun:
    times: list[float]
    stages: dict[str, float]
    flops: dict[str, int]
    cancel_s: float
    clicks: list[float]


def fast_mode_available() -> bool:
    return "precision" in inspect.signature(TrackingSession).parameters


def open_session(model, video, precision: str) -> TrackingSession:
    if precision == "fast":
        return TrackingSession(model, video, device="cpu", precision="fast")
    from app.gui.worker.engine import real_engine

    return real_engine().open_session(model, video, "cpu")  # exactly what the app opens


class OursTrack:
    """Ours in one precision, prompted on frame 0; its frames stepped under its stage clock."""

    def __init__(self, model, video, obj_ids: list[int], precision: str) -> None:
        self.session = open_session(model, video, precision)
        for obj_id in obj_ids:
            prompt = Prompt(points=np.array([click(obj_id)]), labels=np.array([1]))
            self.session.add_prompt(0, obj_id, prompt)
        self.stop_at = float("inf")
        self.gen = self.session.propagate(
            mode="full", should_stop=lambda: time.perf_counter() >= self.stop_at
        )
        next(self.gen)  # the prompted frame: nothing to track
        self.clock = StageClock(model)
        self.frames = self.clock.clocked(self.gen)

    def finish(self, times: list[float], frames: int) -> OursRun:
        """After the timed frames: one more with FLOPs counted, one more cancelled mid-way,
        then the clicks."""
        stages = self.clock.steady_stages(times)
        count_flops(lambda: next(self.gen), self.clock)
        self.stop_at = time.perf_counter() + 0.5 * steady(times)  # stop asked mid-frame
        for _ in self.gen:
            pass
        now = time.perf_counter()
        # A frame faster than half the steady one leaves the stop for a later frame (hence
        # the slack frames); if even those ran out first, nothing was measured.
        cancel_s = now - self.stop_at if now >= self.stop_at else float("nan")
        clicks = click_latency(self.session, frames)
        return OursRun(times, stages, dict(self.clock.flops), cancel_s, clicks)


def click_latency(session: TrackingSession, frames: int) -> list[float]:
    """CLICKS correction clicks on object 1 of a tracked frame whose features are cached."""
    frame = frames // 2 + 1
    session.encode_frame(frame)
    x, y = click(1)
    out = []
    for i in range(CLICKS):
        point = np.array([[x + 4 * (i % 5) - 8, y + 3 * (i // 5) - 3]])
        prompt = Prompt(points=point, labels=np.array([(i + 1) % 2]))  # positive first
        start = time.perf_counter()
        session.add_prompt(frame, 1, prompt, clear_old=False)
        out.append(time.perf_counter() - start)
    return out


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,3,10, got {text!r}") from None
    if not values or not all(1 <= v <= 10 for v in values):
        raise argparse.ArgumentTypeError("object counts must be between 1 and 10")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=GOAL_SIZE)
    parser.add_argument("--frames", type=int, default=GOAL_FRAMES, help="propagated frames")
    parser.add_argument("--objects", type=_ints, default=[1, 3, 10])
    parser.add_argument("--ref-objects", type=_ints, default=[1, 3], help="for the peers")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--threads-check", action="store_true")
    args = parser.parse_args(argv)
    if args.frames < 4:
        parser.error("--frames must be at least 4 (the steady state is the last 4)")
    if args.image_size % 16 or args.image_size < 128:
        parser.error("--image-size must be a multiple of 16, at least 128")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from oracle import build_reference

    torch.set_grad_enabled(False)
    threads = configure_threads()
    print(f"torch threads: {threads} (the app's policy), OMP_WAIT_POLICY=PASSIVE", file=sys.stderr)
    size, frames = args.image_size, args.frames
    ref = build_reference("sam2.1-tiny", image_size=size, video=True)
    model = build_model(get_config("sam2.1-tiny", image_size=size))
    model.load_state_dict(ref.state_dict(), strict=True)
    video = ShapesVideo(frames + 1 + 1 + CANCEL_SLACK)  # + one to count FLOPs on, + cancel
    images = torch.cat(
        [preprocess_frame(video[i], size, torch.device("cpu")) for i in range(frames + 1)]
    )
    folder = tempfile.mkdtemp(prefix="bench_speed_")
    _write_jpegs(video, frames + 1, folder)
    fast = fast_mode_available()
    use_hf = not args.skip_transformers and hf_available()
    setup = Setup(
        model, ref, video, images, folder, ("exact", "fast") if fast else ("exact",), use_hf
    )
    gemm = GemmCeiling()
    _print_header(args, fast, use_hf, gemm, open_session(model, video, "exact"))

    ours: dict[tuple[str, int], OursRun] = {}
    peers: dict[tuple[str, int], list[float]] = {}
    for n in args.objects:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the reference's CPU clean-up warning, each frame
            _run_objects(args, n, setup, ours, peers)
        gemm.sample()
    gemm.print_range()
    throughput = gemm.best()
    report(args, ours, peers, throughput, goals=size == GOAL_SIZE and frames >= GOAL_FRAMES)
    if args.threads_check:
        from bench_threads import threads_check

        threads_check(model, ShapesVideo(8), open_session)


@dataclass(frozen=True)
class Setup:
    """What every object count's runs share."""

    model: torch.nn.Module
    ref: object  # the reference's video predictor
    video: ShapesVideo
    images: torch.Tensor  # preprocessed frames, for the peers
    folder: str  # the same frames as JPEGs, for the reference's init_state
    precisions: tuple[str, ...]
    use_hf: bool


def _run_objects(args, n: int, setup: Setup, ours: dict, peers: dict) -> None:
    """Ours (each precision), the reference and transformers on `n` objects, stepped in turn."""
    ids, frames = list(range(1, n + 1)), args.frames
    tracks = {p: OursTrack(setup.model, setup.video, ids, p) for p in setup.precisions}
    runs = {f"ours {p}": track.frames for p, track in tracks.items()}
    ref_run = None
    if n in args.ref_objects:
        ref_run = RefRun(setup.ref, setup.images, setup.folder, ids)
        runs["reference"] = ref_run.frames
        if setup.use_hf:
            runs["transformers"] = hf_frames(setup.images, ids, (H, W))
    with ExitStack() as stack:
        for track in tracks.values():
            stack.enter_context(track.clock.installed())
        times = interleaved(runs, frames)
        for p, track in tracks.items():
            ours[p, n] = track.finish(times[f"ours {p}"], frames)
    for name, seconds in times.items():
        _done(name, n, seconds)
        if not name.startswith("ours"):
            peers[name, n] = seconds
    if ref_run is not None and n == args.ref_objects[0]:
        peers["reference click", n] = ref_run.clicks(frames // 2 + 1)


def _done(what: str, n: int, times: list[float]) -> None:
    """A line per run as it ends (on stderr), so a long run shows where it is."""
    print(f"  ... {what}, {n} object(s): {steady(times):.3f} s/frame", file=sys.stderr, flush=True)


def _write_jpegs(video: ShapesVideo, count: int, folder: str) -> None:
    """The reference's init_state reads a JPEG folder; its frames are then replaced by ours."""
    from PIL import Image

    for i in range(count):
        Image.fromarray(video[i]).save(Path(folder) / f"{i}.jpg")


def _print_header(args, fast: bool, use_hf: bool, gemm, session) -> None:
    print(
        f"sam2.1-tiny @ {args.image_size}, CPU, {torch.get_num_threads()} threads, "
        f"{args.frames} propagated frames of {H}x{W}; s/frame = mean of the last 4 frames"
    )
    print(
        f"ours exact: the app's session (fill_hole_area={session.fill_hole_area}, "
        f"max_sprinkle_area={session.max_sprinkle_area}); reference: its defaults "
        "(fill_hole_area=8, skipped on CPU: its clean-up needs its CUDA extension)"
    )
    if not fast:
        print("fast mode: not available in this build")
    if not use_hf:
        why = (
            "--skip-transformers"
            if args.skip_transformers
            else "not installed: pip install .[bench]"
        )
        print(f"transformers: skipped ({why})")
    first = {key: values[0] for key, values in gemm.samples.items()}
    print(
        f"GEMM throughput here: fp32 {first['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {first['bf16'] / 1e9:.1f} GFLOP/s (sampled again after each object count)"
    )
    print(
        "ours, the reference and transformers step one frame each in turn (rotating), "
        "so a change in this host's speed reaches every run alike"
    )
    from model.engine.precision import resolve_precision

    chosen, reason = resolve_precision("auto", "cpu")
    print(f"the app's default precision (auto) here: {chosen} - {reason}")
    from model.kernels import cpu_gemm

    route = "oneDNN" if cpu_gemm.onednn_fp32_pays() else "torch's BLAS"
    print(
        f"ours' float32 products: {route} (oneDNN measured {cpu_gemm.onednn_speedup():.2f}x "
        "BLAS here; the reference and transformers use torch's BLAS)"
    )
    print(
        "clicks: the clicked frame's features are cached first (encode_frame): the click is timed"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
