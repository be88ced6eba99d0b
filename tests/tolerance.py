"""Parity tolerances derived from floating-point rounding and scaled by the values compared.

Two float computations of the same maths (ours and the reference, or one path and another)
differ by rounding, and how much depends on the kernels a CPU picks: another BLAS blocking
or vector width sums in another order. A sum of K products rounds to within about
`sqrt(K) * eps` of the largest partial sums, so an element's error is relative to the
magnitude of the values flowing through the computation, not to the element itself (a
logit near 0 that came from terms of size 1e3 carries errors of size 1e3 * eps). The
tolerance is therefore

    |actual - expected| <= ulps * eps * (|expected| + max|expected|)

an elementwise relative term plus an absolute term scaled by the tensor's largest
magnitude, with `eps` the unit roundoff of the precision compared and `ulps` a budget for
the depth of the computation. Nothing here is tuned to one machine: the budgets are wide
multiples of eps that no real bug (a wrong weight, a missing term, a swapped axis: errors of
order 1 relative to the values) can hide under.
"""

from __future__ import annotations

import torch

FP32_EPS = torch.finfo(torch.float32).eps  # 2**-23
BF16_EPS = torch.finfo(torch.bfloat16).eps  # 2**-7

# Budgets in units of eps. One component (a decoder, an encoder) is a few dozen layers of
# sums of up to a few thousand terms: sqrt(K) ~ 50 times a few layers of growth. A tracked
# video chains components over frames and re-enters its own outputs as memories. The most
# each budget used on an AMD EPYC (AVX-512, bf16) over the whole model suite, logged with
# MASKLET_TOLERANCE_LOG: 83 of COMPONENT_ULPS, 54 of CHAIN_ULPS, 1.5 of BF16_ULPS; the
# budgets leave 8x to 12x (and more for the chain, where small differences can grow from
# frame to frame) for other kernels, yet stay far below the errors of order 1 a bug makes.
COMPONENT_ULPS = 1024  # 1.2e-4 of the tensor's scale in float32
CHAIN_ULPS = 4096  # 4.9e-4 of the scale: frames of memory attention feeding back
BF16_ULPS = 12  # bf16 against float32: 9% of the scale, a few roundings of 2**-7


def tolerance(expected: torch.Tensor, *, ulps: int, eps: float = FP32_EPS) -> tuple[float, float]:
    """(rtol, atol) for `assert_close` against `expected`: see the module docstring."""
    scale = expected.detach().abs().max().item() if expected.numel() else 0.0
    rtol = ulps * eps
    return rtol, rtol * max(scale, torch.finfo(torch.float32).tiny)


def assert_parity(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    ulps: int = COMPONENT_ULPS,
    eps: float = FP32_EPS,
    name: str = "",
) -> None:
    """`torch.testing.assert_close` with the scaled tolerance; `actual` is cast to
    `expected`'s dtype first (a bf16 result is compared in float32)."""
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    rtol, atol = tolerance(expected, ulps=ulps, eps=eps)
    torch.testing.assert_close(
        actual.to(expected.dtype),
        expected,
        rtol=rtol,
        atol=atol,
        msg=lambda m: f"{name}: {m}" if name else m,
    )
    _record(actual, expected, ulps, eps, name)


def _record(actual, expected, ulps, eps, name) -> None:
    """With MASKLET_TOLERANCE_LOG set, log how much of each budget was used (for audits)."""
    import os

    log = os.environ.get("MASKLET_TOLERANCE_LOG")
    if not log or not expected.numel():
        return
    import inspect

    scale = expected.detach().abs().max().item() or 1.0
    diff = (actual.to(expected.dtype) - expected).abs().max().item()
    frame = inspect.stack()[2]
    with open(log, "a") as f:
        f.write(f"{diff / scale / eps:.1f}\t{ulps}\t{frame.filename}:{frame.lineno}\t{name}\n")
