"""Which precision a tracking session computes in: "exact" (float32) or "fast" (bf16).

Fast mode runs the model under bf16 autocast on its device, with attention on CPUs
without AMX taking the route of `model.kernels.bf16_attention` (torch's own bf16 attention is no
faster than float32 there; with AMX it is the fastest, see `model.kernels.attention`). It only
pays where the hardware has native bf16 dot products: CUDA GPUs that support bf16, and
CPUs with AVX512-BF16 or AMX (x86) or the BF16 extension (Arm). Without them bf16
matmuls are emulated through float32 and run slower than float32 itself, which is why
"auto" picks float32 there and a request for "fast" is answered with the reason.

On a CPU the flag is not enough: how fast its bf16 dot product runs against its float32
FMA differs between cores. On a 2-core AMD EPYC with AVX512-BF16 a 2048^3 bf16 matmul
ran 2.3x float32's; on a 2-core Intel Xeon with the same flags (no AMX), oneDNN's native
avx512_core_bf16 kernel ran at 0.54x float32 (154 against 287 GFLOP/s), and a tracked
frame took 6.9 s in bf16 against 5.8 s in float32; on a 2-core Xeon with AMX-BF16 a bf16
matmul ran 5.5x float32's and a tracked frame took 1.18-1.20 s against 3.23-3.32 s; on a
2-core AMD EPYC (Zen 5) bf16 ran 865-975 GFLOP/s against float32's 435-480 on oneDNN
(`model.kernels.cpu_gemm`) and a frame took 1.35 s against 2.20 s. So
where the flags say yes, "auto" also times one matmul in each precision, once per
process, on one thread (so that a busy process alongside does not decide it,
`model.kernels.cpu_gemm.speedup`), and takes bf16 only where it measured at least
`MIN_BF16_SPEEDUP` times faster.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import Literal, get_args

import torch

from model.kernels.cpu_gemm import linear, speedup

Precision = Literal["exact", "fast"]
Requested = Literal["auto", "exact", "fast"]
PRECISION_CHOICES: tuple[str, ...] = get_args(Requested)

# What the status bar and logs call each precision.
DTYPE_NAMES: dict[str, str] = {"exact": "float32", "fast": "bf16"}

_X86_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# bf16 autocast adds casts around every matmul: a bare matmul must win by this much.
MIN_BF16_SPEEDUP = 1.2
# The timed matmul: (n x n) @ (n x n)^T, about 2 GFLOP, 5-10 ms a call on one core.
_PROBE_N = 1024


class PrecisionError(ValueError):
    """A precision name that is none of auto, exact, fast."""


def check_requested(requested: str) -> Requested:
    """`requested` if it is one of PRECISION_CHOICES, else a PrecisionError naming them."""
    if requested not in PRECISION_CHOICES:
        raise PrecisionError(
            f"unknown precision {requested!r}: expected one of {', '.join(PRECISION_CHOICES)}"
        )
    return requested  # type: ignore[return-value]


def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (x86 "flags", Arm "Features"); empty elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return frozenset(value.split())
    return frozenset()


def _cpu_native_bf16() -> bool:
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    # torch asks the CPU itself (cpuid), which also works where /proc is missing (macOS, Windows).
    if any(getattr(torch.cpu, name, lambda: False)() for name in probes):
        return True
    flags = _cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(flags & _X86_BF16_FLAGS)


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """Measured bf16 / float32 matmul throughput on this CPU (`model.kernels.cpu_gemm.speedup`:
    one thread, interleaved, once per process), float32 by the route exact mode takes."""
    a, b = torch.randn(_PROBE_N, _PROBE_N), torch.randn(_PROBE_N, _PROBE_N)
    a16, b16 = a.bfloat16(), b.bfloat16()
    # Autocast off, whoever asks: under it the float32 product would be timed in bf16.
    # `linear` takes float32 where exact mode computes it (oneDNN where that pays).
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        return speedup(lambda: linear(a, b), lambda: linear(a16, b16))


def native_bf16(device: str | torch.device) -> bool:
    """Whether `device` has native bf16 dot products, so bf16 is faster than float32 there."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_native_bf16() and cpu_bf16_speedup() >= MIN_BF16_SPEEDUP
    # MPS and others: our bf16 route is not tuned there; float32 is the safe choice.
    return False


def _slow_bf16_reason(device: torch.device, where: str) -> str:
    """Why bf16 will not be faster on `device`, called `where` (it has no bf16 that pays)."""
    if device.type == "cpu" and _cpu_native_bf16():
        speed = cpu_bf16_speedup()
        return f"{where}'s bf16 dot products measured {speed:.2f}x float32's speed"
    return f"{where} has no native bf16 dot products"


def resolve_precision(requested: str, device: str | torch.device) -> tuple[Precision, str]:
    """(precision to use, one-line reason) for a request of auto, exact or fast on `device`.

    "auto" is bf16 where the device has native bf16 and float32 elsewhere. An explicit
    choice is honoured; asking for "fast" where it will not be faster says so in the reason.
    """
    requested = check_requested(requested)
    device = torch.device(device)
    native = native_bf16(device)
    where = "this GPU" if device.type == "cuda" else f"this {device.type.upper()}"
    if requested == "exact":
        return "exact", "float32: exact, as the reference computes"
    if requested == "fast":
        if native:
            return "fast", f"bf16: {where} has native bf16"
        return "fast", (
            f"bf16 requested, but {_slow_bf16_reason(device, where)}: "
            "it will be slower than float32, not faster"
        )
    if native:
        return "fast", f"bf16 (auto): {where} has native bf16"
    return "exact", f"float32 (auto): {_slow_bf16_reason(device, where)}"
