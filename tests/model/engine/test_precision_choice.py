"""Choosing float32 or bf16: auto follows native bf16 support; explicit choices are kept."""

from __future__ import annotations

import pytest
import torch

import model.engine.precision as precision
import model.kernels.cpu_gemm as cpu_gemm
from model.engine.precision import PrecisionError, native_bf16, resolve_precision
from model.engine.precision import cpu_bf16_speedup as REAL_PROBE  # before the fixture patches it


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Pretend the CPU does (True) or does not (False) have native bf16."""

    def set_native(value: bool) -> None:
        monkeypatch.setattr(precision, "_cpu_native_bf16", lambda: value)

    return set_native


def test_auto_is_bf16_only_with_native_support(cpu_bf16):
    cpu_bf16(True)
    assert resolve_precision("auto", "cpu")[0] == "fast"
    cpu_bf16(False)
    chosen, reason = resolve_precision("auto", "cpu")
    assert chosen == "exact" and "no native bf16" in reason


def test_explicit_choices_are_kept(cpu_bf16):
    cpu_bf16(True)
    assert resolve_precision("exact", "cpu")[0] == "exact"
    chosen, reason = resolve_precision("fast", "cpu")
    assert chosen == "fast" and "slower" not in reason


def test_fast_without_native_bf16_says_it_will_not_be_faster(cpu_bf16):
    cpu_bf16(False)
    chosen, reason = resolve_precision("fast", "cpu")
    assert chosen == "fast"
    assert "no native bf16" in reason and "slower than float32" in reason


def test_cuda_asks_torch_and_mps_stays_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert native_bf16("cuda") is True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert native_bf16("cuda") is False
    assert native_bf16("mps") is False
    assert resolve_precision("auto", "mps")[0] == "exact"


def test_cpu_flags_decide_without_torch_probes(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert native_bf16("cpu") is True
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert native_bf16("cpu") is False


def test_unknown_precision_is_refused():
    with pytest.raises(PrecisionError, match="expected one of auto, exact, fast"):
        resolve_precision("half", "cpu")


def test_bf16_flags_that_measure_slower_keep_auto_on_float32(cpu_bf16, monkeypatch):
    # An Intel Xeon with AVX512-BF16 and no AMX ran bf16 matmuls at 0.54x float32.
    cpu_bf16(True)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 0.54)
    chosen, reason = resolve_precision("auto", "cpu")
    assert chosen == "exact" and "measured 0.54x float32" in reason
    chosen, reason = resolve_precision("fast", "cpu")
    assert chosen == "fast" and "measured 0.54x" in reason and "slower than float32" in reason
    assert native_bf16("cpu") is False
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: precision.MIN_BF16_SPEEDUP)
    assert resolve_precision("auto", "cpu")[0] == "fast"


def test_no_bf16_flags_skip_the_timing(cpu_bf16, monkeypatch):
    cpu_bf16(False)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 1 / 0)  # must not be asked
    assert resolve_precision("auto", "cpu")[0] == "exact"


def test_the_speed_probe_times_both_precisions_once(monkeypatch):
    monkeypatch.setattr(precision, "_PROBE_N", 64)
    calls = []
    real_linear = precision.linear  # float32 by exact mode's route (model.kernels.cpu_gemm)

    def counting(a, b):
        out = real_linear(a, b)
        assert out.dtype == a.dtype  # each precision timed in itself, autocast or not
        calls.append(a.dtype)
        return out

    monkeypatch.setattr(precision, "linear", counting)
    REAL_PROBE.cache_clear()
    try:
        # Asked first under fast mode's autocast: it still times float32 as float32.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            speedup = REAL_PROBE()
        assert 0 < speedup < float("inf")
        per_side = 1 + cpu_gemm.PROBE_ROUNDS  # one untimed call, then the timed ones
        assert calls.count(torch.float32) == calls.count(torch.bfloat16) == per_side
        assert REAL_PROBE() == speedup and len(calls) == 2 * per_side  # timed once per process
    finally:
        REAL_PROBE.cache_clear()
