"""Matrix products on CPU through oneDNN: float32 where it beats the BLAS torch links,
bf16 with the bias and activation fused.

torch's CPU float32 `F.linear`, `matmul` and its fused attention call MKL's sgemm, and MKL
takes its AVX-512 kernels only on Intel CPUs. On a 2-core AMD EPYC (Zen 5, AVX-512) it
ran 200-210 GFLOP/s where oneDNN, which torch also ships and already uses for its
convolutions and bf16 matmuls, ran the same float32 products at 430-450 GFLOP/s (4096 x
1024 by 1024 x 1024, 2048^3, 4096 x 2048 by 2048 x 256; 4096 x 256 by 256 x 2048: 229
against 138). Same operands, same float32 arithmetic, another blocking of the sums:
relative differences of about 1e-6, as between two BLAS builds.

So where oneDNN measures faster, float32 linears (`Linear`, `linear`) and the products
of `model.kernels.blocked_attention` go through oneDNN's matmul
(`torch.ops.mkldnn._linear_pointwise`,
the op torch's own compiler emits for CPU linears). Everything else, the GPU and
autograd included, goes to `F.linear` as before, and so does bf16 but for the case below.
The choice is measured once per process (`onednn_fp32_pays`); MASKLET_CPU_GEMM=onednn or
=blas fixes it (tests, benchmarks).

Fast mode's bf16 products go to oneDNN through F.linear anyway, but by way of `addmm`,
which writes the bias over the whole output before the product adds to it; `linear` and
`linear_act` call oneDNN's product with the bias and activation applied as it writes
(`takes_onednn_bf16`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

# oneDNN must be at least this much faster on the probe to be taken: below it the two
# are within this host's run-to-run noise and the BLAS torch picked stays.
MIN_ONEDNN_SPEEDUP = 1.15
# The probe: (n x n) @ (n x n)^T, about 2 GFLOP, 9-20 ms a call on one core.
_PROBE_N = 1024
# Timed calls of each side of a probe (`speedup`), interleaved, after one untimed call.
PROBE_ROUNDS = 5
ROUTE_ENV = "MASKLET_CPU_GEMM"


def _onednn_linear():
    """torch's oneDNN linear op, or None where this build has none."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def best_seconds(fn, *args) -> float:
    """Best of 3 timed calls of `fn(*args)`, after one untimed (the benchmarks' GEMM
    ceiling, on all threads; the route probes use `speedup`)."""
    fn(*args)  # first call: kernel selection and page faults, not timed
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the calling thread, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def speedup(
    slow: Callable[[], object], fast: Callable[[], object], rounds: int = PROBE_ROUNDS
) -> float:
    """How many times faster `fast()` runs than `slow()`: the best of `rounds` calls of
    each, interleaved, on one intra-op thread, after one untimed call of each.

    The probes compare kernels, whose speed per core is what differs between CPUs, and
    one thread is barely disturbed by another process on the machine, where two threads
    wait at every barrier for whichever one the kernel has descheduled: with a busy
    process alongside, two threads (best of 3, one side after the other) measured oneDNN
    at 1.15-1.6x BLAS on a 2-core AMD EPYC (Zen 5), near the threshold that keeps BLAS
    for the whole process, and bf16 at 1.9-4.9x float32; one thread measured 2.16-2.3x
    and 1.86-2.0x, as on a quiet machine (2.13-2.23x and 1.87-1.96x). Interleaved, a
    slow spell of the host reaches both sides.
    """
    with _one_thread():
        slow()  # first calls: kernel selection and page faults, not timed
        fast()
        best_slow = best_fast = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            slow()
            middle = time.perf_counter()
            fast()
            best_slow = min(best_slow, middle - start)
            best_fast = min(best_fast, time.perf_counter() - middle)
    return best_slow / max(best_fast, 1e-9)


@functools.lru_cache(maxsize=1)
def onednn_speedup() -> float:
    """Measured oneDNN / BLAS float32 throughput on this CPU (`speedup`, once per
    process); 0 where torch has no oneDNN linear."""
    op = _onednn_linear()
    if op is None:
        return 0.0
    a, b = torch.randn(_PROBE_N, _PROBE_N), torch.randn(_PROBE_N, _PROBE_N)
    # Autocast off: the first caller may be fast mode's model, and under bf16 autocast
    # F.linear would time a bf16 product against oneDNN's float32 one (and, cached, keep
    # exact mode and fast mode's float32 attention off oneDNN for the whole process).
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        try:
            op(a, b, None, "none", [], "")
        except RuntimeError:  # a build whose op is registered but cannot run here
            return 0.0
        return speedup(lambda: F.linear(a, b), lambda: op(a, b, None, "none", [], ""))


@functools.lru_cache(maxsize=1)
def onednn_fp32_pays() -> bool:
    """Whether float32 products on this CPU go through oneDNN (see the module docstring)."""
    forced = os.environ.get(ROUTE_ENV, "").strip().lower()
    if forced in ("blas", "onednn"):
        return forced == "onednn" and _onednn_linear() is not None
    return onednn_speedup() >= MIN_ONEDNN_SPEEDUP


def takes_onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether `linear(x, weight, bias)` runs on oneDNN: float32 on CPU, no autocast (it
    recasts F.linear), no gradient wanted (the op has no backward), not being compiled
    (inductor picks its own kernels for F.linear and cannot lower this op as called here),
    and oneDNN paying here."""
    return (
        x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and x.dtype == weight.dtype == torch.float32
        and (bias is None or bias.dtype == torch.float32)
        and not torch.is_autocast_enabled("cpu")
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and onednn_fp32_pays()
    )


def _bf16_product(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether F.linear would compute (x, weight) as a bf16 product on CPU: under bf16
    autocast (fast mode) for float operands, or on bf16 operands without autocast."""
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu") == torch.bfloat16 and {x.dtype, weight.dtype} <= {
            torch.float32,
            torch.bfloat16,
        }
    return x.dtype == weight.dtype == torch.bfloat16


def takes_onednn_bf16(x: torch.Tensor, weight: torch.Tensor, fused: bool) -> bool:
    """Whether `linear` / `linear_act` compute a bf16 product (`_bf16_product`) as oneDNN's
    with its bias or activation (`fused`) applied as the product is written.

    F.linear's bf16 product on CPU is oneDNN's too, but through `addmm`, which first
    copies the bias into the whole output and has the product add to it: two passes more
    over the output. Fused, the same product is bit for bit the same and 3-22% faster
    (2-core AMD EPYC Zen 5: Hiera's stage-1 qkv, 65,536 x 96 -> 576, 8.8 against 10.3 ms).
    Without a bias or activation there is nothing to fuse and F.linear stays.
    """
    return (
        fused
        and x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and _bf16_product(x, weight)
        and _onednn_bf16_available()
    )


@functools.lru_cache(maxsize=1)
def _onednn_bf16_available() -> bool:
    probe = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    return _onednn_linear() is not None and probe is not None and bool(probe())


def _onednn_bf16(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str, algorithm: str
) -> torch.Tensor:
    """oneDNN's bf16 product with its operands cast as bf16 autocast casts them."""
    bf16 = torch.bfloat16
    bias = None if bias is None else bias.to(bf16)
    return _onednn_linear()(x.to(bf16), weight.to(bf16), bias, act, [], algorithm)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, through oneDNN where `takes_onednn` says so (float32)
    or `takes_onednn_bf16` (a bf16 product with a bias)."""
    if takes_onednn(x, weight, bias):
        return _onednn_linear()(x, weight, bias, "none", [], "")
    if takes_onednn_bf16(x, weight, fused=bias is not None):
        return _onednn_bf16(x, weight, bias, "none", "")
    return F.linear(x, weight, bias)


# The activations oneDNN applies to a product as it writes it (its "post-ops"), by their
# torch functions; GELU is the exact (erf) one, F.gelu's default.
_POST_OPS = {"relu": F.relu, "gelu": F.gelu}


def linear_act(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor:
    """`act(F.linear(x, weight, bias))` for `activation` "relu" or "gelu", the activation
    fused into oneDNN's product where `linear` takes oneDNN: one pass less over the
    output (memory attention's ReLU MLP, 4096 x 256 -> 2048: 20 ms against 30 ms)."""
    act = _POST_OPS[activation]
    algorithm = "none" if act is F.gelu else ""
    if takes_onednn(x, weight, bias):
        return _onednn_linear()(x, weight, bias, activation, [], algorithm)
    if takes_onednn_bf16(x, weight, fused=True):
        # The activation applies to the float32 sums before they are rounded to bf16
        # (F.linear then the activation rounds twice): within bf16 rounding of it.
        return _onednn_bf16(x, weight, bias, activation, algorithm)
    return act(F.linear(x, weight, bias))


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state-dict keys) computed by `linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


# Token rows whose hidden activations a two-layer MLP computes at a time on CPU: memory
# attention's 1024 x 2048 float32 hidden values (8 MB) stay in cache where all 4096 rows'
# (32 MB) go out to memory and back (18 ms a layer against 28 ms, 2-core AMD EPYC).
_MLP_ROWS = 1024


def mlp(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear, activation: str) -> torch.Tensor:
    """`fc2(act(fc1(x)))` with `linear_act`'s activations, on CPU in blocks of rows."""

    def block(rows: torch.Tensor) -> torch.Tensor:
        hidden = linear_act(rows, fc1.weight, fc1.bias, activation)
        return linear(hidden, fc2.weight, fc2.bias)

    flat = x.reshape(-1, x.shape[-1])
    if x.device.type != "cpu" or flat.shape[0] <= _MLP_ROWS:
        return block(x)
    return torch.cat([block(rows) for rows in flat.split(_MLP_ROWS)]).view(*x.shape[:-1], -1)
