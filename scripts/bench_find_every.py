"""What `--find-every 16` adds to tracking, against its bound: the finder's time per frame / 16
plus the association's.

    python scripts/bench_find_every.py [--frames 64] [--every 16] [--phrases 2] [--full]

Tracks one object through a synthetic clip (`bench_common.ShapesVideo`, 480 x 640) twice with
the same random-init tracker: once alone, once with `model.engine.auto_find.AutoFind` finding
every N frames (the path `masklet track --find` takes: the pass's inbox, `LivePass`). The
finder's threshold is 0 so that every search returns its instances and the association
compares them all with the tracked mask, but no object is added (`max_new=0`): an added
object costs its own tracking, which is not what `--find-every` itself adds. Then, apart:
the finder's time on a frame it has not seen (all phrases) and the association's time on
what it found. Prints, per tracked frame, the measured extra time, the bound
(finder + association) / N, and their ratio (at most 1 holds the issue's claim; on a machine
other processes share, the wall times scatter: look at the load printed with them).

Default: small random-init models (sam2.1-tiny at 256 px, `small_finder_config`): a few
minutes on a shared 2-core CPU (7 at a load of 8, where the noise swamps the difference:
run it on an idle machine or `--device cuda`). `--full`: the released finder size (840 M
parameters, random weights; a minute or more a frame on a CPU) and sam2.1-large at 1024 px.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from model.kernels.threads import configure_threads, prepare_environment  # noqa: E402

# As `masklet track`: passive OpenMP waiting (before torch loads), threads = usable cores.
# Without it, other users' load makes both runs several times slower, and unevenly.
prepare_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_common import ShapesVideo, click  # noqa: E402

from model.engine.auto_find import AutoFind, Found  # noqa: E402
from model.engine.find_association import new_detections  # noqa: E402
from model.engine.live_pass import LivePass  # noqa: E402
from model.engine.session import Prompt, TrackingSession  # noqa: E402

PHRASES = ("person", "bicycle", "dog", "car")


def build(full: bool, device: str):
    from model.sam2.build import build_model
    from model.sam2.config import get_config
    from model.sam3.finder import FinderConfig, Sam3Finder, small_finder_config

    torch.manual_seed(0)
    variant, size = ("sam2.1-large", 1024) if full else ("sam2.1-tiny", 256)
    tracker = build_model(get_config(variant, image_size=size)).to(device).eval()
    finder = Sam3Finder(cfg=FinderConfig() if full else small_finder_config()).to(device).eval()
    return tracker, finder


class NoEdits:
    def take_edits(self) -> list:
        return []

    def must_yield(self) -> bool:
        return False


def finder_fn(finder, phrases: tuple[str, ...], precision: str):
    def find(frame: int, image: np.ndarray) -> list[Found]:
        found = []
        for phrase in phrases:
            got = finder.find(image, phrase, threshold=0.0, frame_key=frame, precision=precision)
            masks, scores = got.masks.cpu().numpy(), got.scores.tolist()
            found += [Found(m, s, phrase) for m, s in zip(masks, scores, strict=True)]
        return found

    return find


def track(tracker, video, device: str, precision: str, make_auto=None) -> tuple[float, float, int]:
    """Wall and CPU seconds to track one clicked object through the clip, with
    `make_auto(session)`'s AutoFind searching if given; and how many searches it made."""
    session = TrackingSession(tracker, video, device=device, precision=precision)
    x, y = click(1)
    session.add_prompt(0, 1, Prompt(points=np.array([[x, y]], np.float32),
                                    labels=np.array([1], np.int32)))  # fmt: skip
    auto_find = None if make_auto is None else make_auto(session)
    inbox = auto_find if auto_find is not None else NoEdits()
    start, cpu = time.perf_counter(), time.process_time()
    live = LivePass(session, None, "forward", inbox=inbox, cancel=threading.Event(), mode="full")
    for result in live.frames():
        if auto_find is not None:
            auto_find.look(result)
    searches = 0 if auto_find is None else len(auto_find.searches)
    return time.perf_counter() - start, time.process_time() - cpu, searches


def finder_and_association(
    find, video, tracked: np.ndarray, frames: list[int]
) -> tuple[float, float]:
    """Least CPU seconds of one search (all phrases) on an unseen frame, and of its
    association."""
    find_s, assoc_s = [], []
    for frame in frames:
        start = time.process_time()
        found = find(frame, video[frame])
        find_s.append(time.process_time() - start)
        start = time.process_time()
        new_detections([f.mask for f in sorted(found, key=lambda f: -f.score)], [tracked])
        assoc_s.append(time.process_time() - start)
    return min(find_s), min(assoc_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--phrases", type=int, default=2, choices=range(1, len(PHRASES) + 1))
    parser.add_argument("--precision", default="exact", choices=("exact", "fast"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--full", action="store_true", help="the released finder size")
    args = parser.parse_args()
    configure_threads()
    tracker, finder = build(args.full, args.device)
    video = ShapesVideo(args.frames)
    find = finder_fn(finder, PHRASES[: args.phrases], args.precision)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    track(tracker, ShapesVideo(2), args.device, args.precision)  # warm-up
    find(-1, ShapesVideo(1)[0])  # the finder's first call (phrases encoded, kernels chosen)

    in_pass: list[float] = []  # CPU seconds of each search made during the timed passes

    def timed_find(frame: int, image: np.ndarray) -> list[Found]:
        start = time.process_time()
        try:
            return find(frame, image)
        finally:
            in_pass.append(time.process_time() - start)

    def make_auto(session) -> AutoFind:
        return AutoFind(session, video, timed_find, new_id=lambda f: 0, every=args.every, max_new=0)

    alone, finding = [], []
    for _ in range(args.repeats):  # alternating, so that a change of load hits both
        finding.append(track(tracker, video, args.device, args.precision, make_auto))
        finder.clear_cache()
        alone.append(track(tracker, video, args.device, args.precision))
    searches = finding[0][2]
    mask = np.zeros(video[0].shape[:2], bool)
    mask[100:180, 30:110] = True
    unseen = [args.frames + i for i in range(3)]  # frames the finder's cache has not held
    per_find, per_assoc = finder_and_association(find, ShapesVideo(args.frames + 3), mask, unseen)
    bound = (per_find + per_assoc) / args.every
    n = args.frames
    for what, index in (("wall", 0), ("CPU", 1)):
        a, f = min(r[index] for r in alone) / n, min(r[index] for r in finding) / n
        print(f"{what:4} tracking alone {a * 1e3:8.1f} ms/frame, with finding {f * 1e3:8.1f} "
              f"ms/frame ({searches} searches): extra {(f - a) * 1e3:.1f} ms/frame")  # fmt: skip
    print(f"CPU  finder {per_find * 1e3:.1f} ms a frame ({args.phrases} phrases), "
          f"association {per_assoc * 1e3:.1f} ms a search; "
          f"bound / {args.every}: {bound * 1e3:.1f} ms/frame")  # fmt: skip
    a, f = min(r[1] for r in alone) / n, min(r[1] for r in finding) / n
    searched = sum(in_pass) / len(in_pass) / args.every
    print(f"CPU  finder during the passes: {searched * args.every * 1e3:.1f} ms a search "
          f"(mean of {len(in_pass)}), {searched * 1e3:.1f} ms/frame")  # fmt: skip
    print(f"ratio (CPU extra / bound): {(f - a) / bound:.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
