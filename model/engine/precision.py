"""Which precision a tracking session computes in: "exact" (float32) or "fast" (bf16).

Fast mode runs the model under bf16 autocast on its device, with attention on CPU taking
the route of `model.bf16_attention` (torch's own bf16 attention on CPU is no faster than
float32). It only pays where the hardware has native bf16 dot products: CUDA GPUs that
support bf16, and CPUs with AVX512-BF16 or AMX (x86) or the BF16 extension (Arm). Without
them bf16 matmuls are emulated through float32 and run slower than float32 itself, which
is why "auto" picks float32 there and a request for "fast" is answered with the reason.
"""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path
from typing import Literal, get_args

import torch

Precision = Literal["exact", "fast"]
Requested = Literal["auto", "exact", "fast"]
PRECISION_CHOICES: tuple[str, ...] = get_args(Requested)

# What the status bar and logs call each precision.
DTYPE_NAMES: dict[str, str] = {"exact": "float32", "fast": "bf16"}

_X86_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


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


def native_bf16(device: str | torch.device) -> bool:
    """Whether `device` has native bf16 dot products, so bf16 is faster than float32 there."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_native_bf16()
    # MPS and others: our bf16 route is not tuned there; float32 is the safe choice.
    return False


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
            f"bf16 requested, but {where} has no native bf16 dot products: "
            "it will be slower than float32, not faster"
        )
    if native:
        return "fast", f"bf16 (auto): {where} has native bf16"
    return "exact", f"float32 (auto): {where} has no native bf16"
