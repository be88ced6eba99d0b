"""GPU check: CUDA against CPU float32 parity, the bf16 tolerance, frames/s against the reference.

On a CUDA machine:
1. parity: one propagation of SAM 2.1 tiny (random init, 3 objects) on the CPU in
   float32, on CUDA in float32 (TF32 off) and on CUDA in bf16 (the session's default
   there); prints the largest logit difference (relative to the logits' scale) and the
   smallest mask IoU against the CPU, and whether they are within tolerance;
2. speed: frames/s at steady state (the mean of the last 4 of `--frames` frames) for
   tiny and large at 1024 with 1 and 3 objects, ours against the reference
   `sam2==1.1.0` in the same run, both in bf16 autocast (how the reference's own demo
   runs on GPU) and in float32; `--compile` also compiles both image encoders;
3. SAM 3's finder (`scripts/bench_gpu_finder.py`): CUDA against CPU float32 parity at
   name-seeded weights, in float32 and in bf16 autocast (as Meta runs it on GPU), and
   seconds per frame (a first find, another phrase); `--skip-finder` leaves it out,
   `--finder-only` runs it alone, `--device cpu --small` is its dry run on a CPU.
Without CUDA (and without `--device cpu`) it prints one line saying so and exits 0.

Imports: our `model/`, torch, numpy and the oracle (tests/oracle.py: sam2 with hydra-core,
omegaconf, antlr4 and iopath). The GPU machine has torch but none of those and no
network, so they travel as plain package folders, copied from this machine's install
into a git-ignored folder (pure Python; antlr4-python3-runtime 4.9.3, iopath 0.1.10 and
sam2 1.1.0 have no wheel on PyPI, so the device README's wheel recipe cannot fetch them):

    echo /.gpu_site/ >> .git/info/exclude      # once
    python scripts/bench_gpu.py --prepare .gpu_site

then, with the device tool, in one call (the whole run takes about 4 minutes, the finder
about one of them):

    run(command="PYTHONPATH=.gpu_site PYTHONUNBUFFERED=1 python3 scripts/bench_gpu.py",
        carry=[".gpu_site"], timeout_s=420)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from bench_common import H, ShapesVideo, W, click, steady  # noqa: E402

NO_CUDA = "bench_gpu: no CUDA device here, nothing to measure; run it on a GPU machine"
# What the oracle imports, as top-level package folders to carry.
ORACLE_PACKAGES = ("sam2", "hydra", "omegaconf", "antlr4", "iopath")
PARITY_FRAMES, PARITY_OBJECTS = 8, 3
# fp32 CUDA against CPU: TF32 is off, only summation order differs. bf16 keeps ~3
# significant digits, and near-zero logits along mask edges can change a lot relative
# to the scale (0.67 seen on CPU bf16 with random weights): it is judged on the masks,
# and its logit difference is printed as the measured bf16 tolerance.
TOLERANCE = {"cuda fp32": (1e-3, 0.99), "cuda bf16": (None, 0.9)}
VARIANTS = {"tiny": "sam2.1-tiny", "large": "sam2.1-large"}


def prepare(folder: Path) -> None:
    """Copy the oracle's pure-Python dependencies from this install into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ORACLE_PACKAGES:
        source = Path(importlib.import_module(name).__file__).parent
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        print(f"copied {name} -> {target}")


# ---------------------------------------------------------------------- ours


def _session(model, video, device: str, *, bf16: bool):
    from model.engine.session import Prompt, TrackingSession

    session = TrackingSession(model, video, device=device, autocast=bf16)
    return session, Prompt


def ours_propagation(model, video, n: int, device: str, *, bf16: bool):
    """(session, seconds per propagated frame) for one full forward propagation."""
    session, prompt = _session(model, video, device, bf16=bf16)
    for obj_id in range(1, n + 1):
        points = np.array([click(obj_id)])
        session.add_prompt(0, obj_id, prompt(points=points, labels=np.array([1])))
    gen = session.propagate(mode="full")
    next(gen)  # the prompted frame
    times, last = [], time.perf_counter()
    for _ in gen:  # each result's masks are on the CPU: the step has finished
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return session, times


def parity(size: int) -> None:
    from model.sam2.build import build_model
    from model.sam2.config import get_config

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    cpu_model = build_model(get_config("sam2.1-tiny", image_size=size)).eval()
    cuda_model = build_model(get_config("sam2.1-tiny", image_size=size)).eval()
    cuda_model.load_state_dict(cpu_model.state_dict())
    cuda_model.cuda()
    video = ShapesVideo(PARITY_FRAMES)
    base, _ = ours_propagation(cpu_model, video, PARITY_OBJECTS, "cpu", bf16=False)
    what = f"{PARITY_OBJECTS} objects, {PARITY_FRAMES} frames"
    print(f"\nParity, sam2.1-tiny @ {size}, {what}, against CPU fp32")
    for name, bf16 in (("cuda fp32", False), ("cuda bf16", True)):
        other, _ = ours_propagation(cuda_model, video, PARITY_OBJECTS, "cuda", bf16=bf16)
        rel, iou = _compare(base, other)
        max_rel, min_iou = TOLERANCE[name]
        ok = (max_rel is None or rel <= max_rel) and iou >= min_iou
        bound = "printed, not judged" if max_rel is None else f"tolerance {max_rel:g}"
        print(
            f"  {name}: max |logit diff| / max |logit| {rel:.2e} ({bound}), "
            f"min mask IoU {iou:.4f} (tolerance {min_iou:g}): {'ok' if ok else 'NOT ok'}"
        )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def _compare(base, other) -> tuple[float, float]:
    worst_rel, worst_iou = 0.0, 1.0
    for obj_id in base.object_ids:
        for frame in range(base.num_frames):
            a = base._low_res_logits(obj_id, frame).float()
            b = other._low_res_logits(obj_id, frame).float().cpu()
            scale = max(float(a.abs().max()), 1e-6)
            worst_rel = max(worst_rel, float((a - b).abs().max()) / scale)
            ma, mb = base.mask(obj_id, frame), other.mask(obj_id, frame)
            union = np.logical_or(ma, mb).sum()
            iou = np.logical_and(ma, mb).sum() / union if union else 1.0
            worst_iou = min(worst_iou, float(iou))
    return worst_rel, worst_iou


# ---------------------------------------------------------------------- the reference


@contextlib.contextmanager
def _reference_frames(images: torch.Tensor):
    """The reference's init_state reads a video from disk; hand it our frames instead."""
    import sam2.sam2_video_predictor as predictor

    original = predictor.load_video_frames
    predictor.load_video_frames = lambda **_kwargs: (images, H, W)
    predictor.tqdm = lambda items, *_args, **_kwargs: items
    try:
        yield
    finally:
        predictor.load_video_frames = original


def ref_propagation(ref, images: torch.Tensor, n: int) -> list[float]:
    with _reference_frames(images):
        state = ref.init_state("frames-in-memory")
    for obj_id in range(1, n + 1):
        ref.add_new_points_or_box(state, 0, obj_id, [list(click(obj_id))], [1])
    gen = ref.propagate_in_video(state)
    next(gen)
    times, last = [], time.perf_counter()
    for _, _, masks in gen:
        masks.cpu()  # as ours: the frame's masks reach the CPU
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def speed(args) -> None:
    import warnings

    from oracle import build_reference

    from model.engine.frames import preprocess_frame
    from model.sam2.build import build_model
    from model.sam2.config import get_config

    size, video = args.image_size, ShapesVideo(args.frames + 1)
    images = torch.cat(
        [preprocess_frame(video[i], size, torch.device("cuda")) for i in range(len(video))]
    )
    print(f"\nframes/s at steady state (mean of the last 4 of {args.frames}), @ {size}")
    print(f"  {'':28s} {'reference':>10s} {'ours':>10s} {'ours/ref':>9s}")
    for short in args.variants:
        ref = build_reference(VARIANTS[short], image_size=size, video=True).cuda()
        ours = build_model(get_config(VARIANTS[short], image_size=size))
        ours.load_state_dict(ref.state_dict(), strict=True)
        ours.cuda().eval()
        if args.compile:
            ours.image_encoder = torch.compile(ours.image_encoder)
            ref.image_encoder = torch.compile(ref.image_encoder)
        for n in args.objects:
            for precision in ("bf16", "fp32"):
                bf16 = precision == "bf16"
                autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
                with torch.inference_mode(), autocast, warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # its clean-up needs its CUDA extension
                    theirs = 1 / steady(ref_propagation(ref, images, n))
                _, times = ours_propagation(ours, video, n, "cuda", bf16=bf16)
                mine = 1 / steady(times)
                label = f"{short}, {n} object(s), {precision}"
                print(f"  {label:28s} {theirs:10.1f} {mine:10.1f} {mine / theirs:9.2f}")
        del ref, ours
        torch.cuda.empty_cache()


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="copy the oracle's packages")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--variants", type=_csv, default=["tiny", "large"])
    parser.add_argument("--objects", type=lambda t: [int(v) for v in _csv(t)], default=[1, 3])
    parser.add_argument("--compile", action="store_true", help="torch.compile both image encoders")
    parser.add_argument("--skip-finder", action="store_true", help="no SAM 3 finder check")
    parser.add_argument("--finder-only", action="store_true", help="only the SAM 3 finder")
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: the finder's dry run"
    )
    parser.add_argument("--small", action="store_true", help="the finder at a reduced size")
    args = parser.parse_args(argv)
    if args.prepare is not None:
        prepare(args.prepare)
        return 0
    if args.device == "cpu":
        from bench_gpu_finder import run as finder_run

        torch.set_grad_enabled(False)
        finder_run("cpu", args.small)
        return 0
    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or args.frames < 4:
        parser.error(f"--variants are from {sorted(VARIANTS)}; --frames must be >= 4")
    torch.set_grad_enabled(False)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    if not args.finder_only:
        parity(args.image_size)
        speed(args)
    if not args.skip_finder:
        from bench_gpu_finder import run as finder_run

        finder_run("cuda", args.small)
    return 0


if __name__ == "__main__":
    sys.exit(main())
