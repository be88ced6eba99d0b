"""Choosing float32 or bf16: auto follows native bf16 support; explicit choices are kept."""

from __future__ import annotations

import pytest
import torch

import model.engine.precision as precision
from model.engine.precision import PrecisionError, native_bf16, resolve_precision


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
