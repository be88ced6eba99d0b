"""Helpers for the speed benchmarks: the test video, stage clocks, FLOP floors, goals.

Plain torch and numpy (plus our `model/`), so `bench_gpu.py` can use them on a
machine that has none of the app's dependencies.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

H, W = 480, 640
MAX_OBJECTS = 10
# Steady state: the mean of the last frames, once the memory bank is full (7 memories,
# up to 16 object pointers); earlier frames attend to fewer memories and are cheaper.
STEADY_FRAMES = 4
STAGES = ("image encoder", "memory attention", "mask decoder", "memory encoder", "clean-up")


def _shape_params(obj_id: int) -> tuple[int, int, int, int, tuple[int, int, int]]:
    """(x0, y0, dx, dy, colour) of object `obj_id` (1-based): a 5 x 2 grid of discs."""
    i = obj_id - 1
    x0, y0 = 70 + 125 * (i % 5), 130 + 220 * (i // 5)
    dx, dy = (-1) ** i * (3 + i % 3), (-1) ** (i // 2) * 2
    colour = ((60 + 53 * i) % 256, (200 - 37 * i) % 256, (90 + 71 * i) % 256)
    return x0, y0, dx, dy, colour


def click(obj_id: int) -> tuple[float, float]:
    """A positive click on object `obj_id` in frame 0 (x, y)."""
    x0, y0, *_ = _shape_params(obj_id)
    return float(x0), float(y0)


class ShapesVideo:
    """`num_frames` frames of H x W: a gradient with MAX_OBJECTS moving discs.

    Each frame is drawn once and kept (under 1 MB a frame): drawing one takes about 17 ms,
    several times what decoding a 480p frame costs, and the timed runs read each frame
    once per run; the reference gets its frames loaded before it is timed.
    """

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self._drawn: dict[int, np.ndarray] = {}
        yy, xx = np.mgrid[:H, :W]
        self._grid = yy, xx
        self._background = np.stack([xx * 200 // W, yy * 200 // H, 60 + 0 * xx], -1).astype(
            np.uint8
        )

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_frames:
            raise IndexError(index)
        if index not in self._drawn:
            self._drawn[index] = self._draw(index)
        return self._drawn[index].copy()  # a reader may modify what it is given

    def _draw(self, index: int) -> np.ndarray:
        yy, xx = self._grid
        img = self._background.copy()
        for obj_id in range(1, MAX_OBJECTS + 1):
            x0, y0, dx, dy, colour = _shape_params(obj_id)
            cx, cy = x0 + dx * index, y0 + dy * index
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 38**2] = colour
        return img


def steady(times: list[float]) -> float:
    """Seconds per frame at steady state: the mean of the last STEADY_FRAMES frames."""
    if not times:
        return float("nan")
    return float(np.mean(times[-STEADY_FRAMES:]))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def interleaved(runs: dict[str, Iterator], frames: int) -> dict[str, list[float]]:
    """Seconds per item of each run, the runs stepped one item each in turn, `frames` rounds.

    This host's speed changes from one second to the next (a 2048 GEMM at 160 GFLOP/s for
    a few seconds, then 270): runs timed one after the other can each land in a different
    phase, and their ratio says more about the host than about them. Stepped in turn, every
    run sees the same phases; the first to step rotates each round, so none always follows
    the same neighbour. A run that ends early simply stops being stepped.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    live = list(runs)
    for round_ in range(frames):
        shift = round_ % len(live) if live else 0
        for name in live[shift:] + live[:shift]:
            start = time.perf_counter()
            try:
                next(runs[name])
            except StopIteration:
                live.remove(name)
                continue
            times[name].append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------- stage clocks


@dataclass
class StageClock:
    """Per-frame seconds (and FLOPs, under a FlopCounterMode) of the model's stages.

    Forward hooks around the model's components, and a wrapper around the engine's
    clean-up (`fill_holes_and_specks`, patched where the engine modules imported it);
    whatever else a frame costs is "storage" (memory lookup, packing and resizing masks).
    """

    model: torch.nn.Module
    seconds: list[dict[str, float]] = field(default_factory=list)
    flops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    counter: object | None = None
    # Off while other runs step: ours in the other precision shares the model's hooks.
    active: bool = False
    _open: dict[str, tuple[float, int]] = field(default_factory=dict)

    def _modules(self) -> dict[str, list[torch.nn.Module]]:
        m = self.model
        decoder = m.sam_mask_decoder
        # conv_s0/s1 project the high-resolution features once per image: encoder work.
        return {
            "image encoder": [m.image_encoder, decoder.conv_s0, decoder.conv_s1],
            "memory attention": [m.memory_attention],
            "mask decoder": [m.sam_prompt_encoder, decoder],
            "memory encoder": [m.memory_encoder],
        }

    def new_frame(self) -> None:
        self.seconds.append(defaultdict(float))

    def clocked(self, frames: Iterator) -> Iterator:
        """`frames`, each step a new frame of this clock, timed only while it steps."""
        while True:
            self.new_frame()
            self.active = True
            try:
                item = next(frames)
            except StopIteration:
                return
            finally:
                self.active = False
            yield item

    def _total_flops(self) -> int:
        return int(self.counter.get_total_flops()) if self.counter is not None else 0

    def _enter(self, stage: str, *_args) -> None:
        if not self.active:
            return
        self._open[stage] = (time.perf_counter(), self._total_flops())

    def _exit(self, stage: str, *_args) -> None:
        if not self.active:
            return
        t0, f0 = self._open.pop(stage)
        if self.seconds:
            self.seconds[-1][stage] += time.perf_counter() - t0
        self.flops[stage] += self._total_flops() - f0

    @contextmanager
    def installed(self) -> Iterator[StageClock]:
        from model.engine import postprocess

        handles = []
        for stage, modules in self._modules().items():
            for module in modules:
                handles.append(module.register_forward_pre_hook(partial(self._enter, stage)))
                handles.append(module.register_forward_hook(partial(self._exit, stage)))
        original = postprocess.fill_holes_and_specks

        def clean_up(*args, **kwargs):
            self._enter("clean-up")
            try:
                return original(*args, **kwargs)
            finally:
                self._exit("clean-up")

        patched = [
            mod
            for name, mod in list(sys.modules.items())
            if name.startswith("model.engine") and getattr(mod, "fill_holes_and_specks", None)
        ]
        for mod in patched:
            mod.fill_holes_and_specks = clean_up
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            for mod in patched:
                mod.fill_holes_and_specks = original

    def steady_stages(self, frame_times: list[float]) -> dict[str, float]:
        """Mean seconds per stage over the steady frames; "storage" is the remainder."""
        rows = self.seconds[-STEADY_FRAMES:]
        out = {s: float(np.mean([r.get(s, 0.0) for r in rows])) if rows else 0.0 for s in STAGES}
        out["storage"] = steady(frame_times) - sum(out.values())
        return out


def count_flops(step: Callable[[], object], clock: StageClock) -> None:
    """Run `step` (one frame) with FLOPs counted per stage into `clock.flops`."""
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    # On CPU attention runs as one fused op the counter does not know; count it as the
    # counter counts the GPU's fused attention.
    cpu_sdpa = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    mapping = {cpu_sdpa: _sdpa_flops} if cpu_sdpa is not None else {}
    # Ours' oneDNN float32 linears (`model.kernels.cpu_gemm`), unknown to the counter too.
    onednn = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if onednn is not None:
        mapping[onednn] = _linear_flops
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    clock.counter, clock.active = counter, True
    try:
        with counter:
            step()
    finally:
        clock.counter, clock.active = None, False


def _sdpa_flops(query_shape, key_shape, value_shape, *_args, out_shape=None, **_kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _linear_flops(input_shape, weight_shape, *_args, out_shape=None, **_kwargs) -> int:
    rows = 1
    for size in input_shape[:-1]:
        rows *= size
    return 2 * rows * weight_shape[0] * weight_shape[1]


def matmul_flops_per_s(dtype: torch.dtype, device: str = "cpu", n: int = 2048) -> float:
    """Best-of-3 throughput of one large square GEMM by the fastest route torch has here:
    the machine's compute ceiling. On CPU that includes oneDNN's matmul, which runs float32
    twice as fast as torch's default BLAS on AMD CPUs (`model.kernels.cpu_gemm`)."""
    from model.kernels.cpu_gemm import _onednn_linear

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    routes = [torch.matmul]
    onednn = _onednn_linear() if device == "cpu" else None
    if onednn is not None:
        routes.append(lambda x, y: onednn(x, y, None, "none", [], ""))  # x @ y^T: same FLOPs
    return max(_gemm_flops_per_s(route, a, b, device) for route in routes)


def _gemm_flops_per_s(route, a: torch.Tensor, b: torch.Tensor, device: str) -> float:
    from model.kernels.cpu_gemm import best_seconds

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return 2 * a.shape[0] ** 3 / best_seconds(lambda: (route(a, b), sync()))


class GemmCeiling:
    """The GEMM throughput, sampled again through the run: floors use the best sample,
    since this host's speed changes under a long benchmark."""

    _DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.samples: dict[str, list[float]] = {key: [] for key in self._DTYPES}
        self.sample()

    def sample(self) -> None:
        for key, dtype in self._DTYPES.items():
            self.samples[key].append(matmul_flops_per_s(dtype, self.device))

    def best(self) -> dict[str, float]:
        return {key: max(values) for key, values in self.samples.items()}

    def print_range(self) -> None:
        spans = ", ".join(
            f"{key} {min(v) / 1e9:.0f}-{max(v) / 1e9:.0f}" for key, v in self.samples.items()
        )
        print(f"\nGEMM throughput over the run, GFLOP/s: {spans} (floors use the best)")


# ---------------------------------------------------------------------- printing


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    first = max(widths[0], 30)
    line = [f"{header[0]:<{first}s}"] + [
        f"{h:>{w}s}" for h, w in zip(header[1:], widths[1:], strict=True)
    ]
    print("  ".join(line))
    for row in rows:
        cells = [f"{row[0]:<{first}s}"] + [
            f"{c:>{w}s}" for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


@dataclass(frozen=True)
class Goal:
    text: str
    value: float | None  # None: not measured in this run
    target: float
    at_most: bool = False  # the value must be <= target (else >=)

    def line(self) -> str:
        if self.value is None or not np.isfinite(self.value):
            return f"  [not measured] {self.text}"
        ok = self.value <= self.target if self.at_most else self.value >= self.target
        sign = "<=" if self.at_most else ">="
        verdict = "met    " if ok else "NOT met"
        return f"  [{verdict}] {self.text}: {self.value:.2f} (goal {sign} {self.target:g})"
