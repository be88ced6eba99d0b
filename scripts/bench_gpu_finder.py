"""SAM 3's finder on a GPU, for `scripts/bench_gpu.py`: parity against the CPU and time per frame.

At name-seeded weights (`tests/sam3_oracle.seeded_value`, as `bench_sam3_find.py` gives
them), on one synthetic frame (`bench_sam3_find.bench_frame`) with a phrase and one
exemplar box and threshold 0 (every query, every mask):
1. parity: the CPU in float32 against the device in float32 (TF32 off) and in bf16
   autocast, which is how Meta's code runs SAM 3 on a GPU (and our fast mode); query by
   query, the largest score and box differences against their scale and the share of mask
   pixels that differ;
2. speed: seconds per frame of a first find (each on a new frame: backbone, text, heads,
   masks) and of another phrase on the same frame, in float32 and in bf16 autocast.
`--device cpu --small` runs it all on the CPU at the golden fixtures' reduced size: a dry
run of this code where there is no GPU (its parity is then the CPU against itself).
About a minute at full size on an H100 machine (most of it the CPU's float32 find).
"""

from __future__ import annotations

import time

import torch

PHRASES = ("a red bicycle", "a dog")
# fp32 on the device against the CPU: only summation order differs (TF32 off). bf16 keeps
# about 3 significant digits: scores and boxes within 12 bf16 roundings of their scale,
# as the CPU's fast-mode tests allow; mask pixels near the 0.5 cut may flip.
TOLERANCE = {"float32": (1e-3, 0.001), "bf16": (12 * 2**-7, 0.02)}
TIMED_FRAMES = 3


def _frames(small: bool, count: int) -> list[torch.Tensor]:
    """`count` different frames: the benchmark frame, then shifted copies of it."""
    from bench_sam3_find import bench_frame

    first = bench_frame(small)
    return [first.roll(17 * i, dims=1).contiguous() for i in range(count)]


def _exemplar(frame: torch.Tensor) -> list[list[float]]:
    h, w = frame.shape[:2]
    return [[0.55 * w, 0.3 * h, 0.7 * w, 0.55 * h]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _find(finder, frame, precision: str, device: torch.device):  # noqa: ANN001, ANN202
    found = finder.find(
        frame, PHRASES[0], boxes=_exemplar(frame), threshold=0.0, precision=precision
    )
    _sync(device)
    return found


def _compare(base, got) -> tuple[float, float, float]:  # noqa: ANN001
    """(max score diff / scale, max box diff / scale, share of mask pixels that differ),
    query by query (near-equal scores may come in another order)."""
    order = base.queries.argsort()
    other = got.queries.cpu().argsort()
    errors = []
    for name in ("scores", "boxes"):
        a = getattr(base, name)[order].float()
        b = getattr(got, name).cpu()[other].float()
        errors.append(float((a - b).abs().max()) / max(float(a.abs().max()), 1e-12))
    masks = (base.masks[order] != got.masks.cpu()[other]).float().mean()
    return errors[0], errors[1], float(masks)


def parity(cpu_finder, device: torch.device, small: bool) -> None:  # noqa: ANN001
    """CPU float32 against `device` in float32 and bf16 autocast; moves the finder there."""
    frame = _frames(small, 1)[0]
    base = _find(cpu_finder, frame, "exact", torch.device("cpu"))
    assert base.scores.std() > 0 and torch.isfinite(base.scores).all(), "degenerate scores"
    finder = cpu_finder.to(device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"\nSAM 3 finder parity, {device} against CPU float32 ({len(base.scores)} queries)")
    for name, precision in (("float32", "exact"), ("bf16", "fast")):
        score, box, pixels = _compare(base, _find(finder, frame, precision, device))
        rel, share = TOLERANCE[name]
        ok = score <= rel and box <= rel and pixels <= share
        print(
            f"  {name}: scores {score:.2e}, boxes {box:.2e} of their scale (tolerance {rel:.2g}),"
            f" mask pixels differing {pixels:.2e} (tolerance {share:g}): {'ok' if ok else 'NOT ok'}"
        )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def speed(finder, device: torch.device, small: bool) -> None:  # noqa: ANN001
    """Seconds per first find (new frames) and per further phrase, float32 and bf16."""
    frames = _frames(small, TIMED_FRAMES + 1)
    print(f"\nSAM 3 finder on {device}: seconds per frame (mean of {TIMED_FRAMES})")
    for name, precision in (("float32", "exact"), ("bf16 autocast", "fast")):
        finder.clear_cache()
        _find(finder, frames[0], precision, device)  # warm-up: kernels, allocator
        start = time.perf_counter()
        for frame in frames[1:]:
            _find(finder, frame, precision, device)
        first = (time.perf_counter() - start) / TIMED_FRAMES
        start = time.perf_counter()
        for _ in range(TIMED_FRAMES):
            finder.backbone.language_backbone.clear_cache()
            finder.find(frames[-1], PHRASES[1], threshold=0.5, precision=precision)
            _sync(device)
        again = (time.perf_counter() - start) / TIMED_FRAMES
        print(f"  {name:14s} first find {first:7.3f} s, another phrase {again:7.3f} s")


def run(device: str, small: bool) -> None:
    """Both checks on `device` ("cuda", or "cpu" for a dry run)."""
    from bench_sam3_find import seeded_finder

    start = time.perf_counter()
    finder = seeded_finder(small, torch.float32)
    print(
        f"\nSAM 3 finder ({'small' if small else 'released size'}) built in "
        f"{time.perf_counter() - start:.1f} s"
    )
    target = torch.device(device)
    parity(finder, target, small)
    speed(finder, target, small)
