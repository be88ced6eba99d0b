"""Products through oneDNN (`model.kernels.cpu_gemm`): float32 ones within float32 tolerance of
F.linear, taken only where nothing else (autocast, autograd, another dtype) is asked; bf16
ones with their bias or activation fused, within bf16 rounding of F.linear's."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from tolerance import BF16_EPS, BF16_ULPS, assert_parity
from torch import nn

import model.kernels.cpu_gemm as cpu_gemm
from model.kernels.cpu_gemm import Linear, linear, linear_act, mlp, takes_onednn


def _operands(*shape: int, out: int = 48, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen)
    return x, torch.randn(out, shape[-1], generator=gen), torch.randn(out, generator=gen)


@pytest.mark.parametrize("shape", [(7, 32), (2, 3, 50, 96), (0, 16), (1, 1, 256)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_equals_f_linear(shape, with_bias, gemm_route) -> None:
    x, w, b = _operands(*shape)
    b = b if with_bias else None
    assert takes_onednn(x, w) == (gemm_route == "onednn")
    assert_parity(linear(x, w, b), F.linear(x, w, b))


@pytest.mark.parametrize(("activation", "act"), [("relu", F.relu), ("gelu", F.gelu)])
@pytest.mark.parametrize("autocast", [False, True])
def test_fused_activations_equal_unfused(activation, act, autocast, gemm_route) -> None:
    x, w, b = _operands(3, 40, 64, out=96)
    x = x * 3  # pre-activations of both signs, through GELU's curved part
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        actual, expected = linear_act(x, w, b, activation), act(F.linear(x, w, b))
        fused_bf16 = cpu_gemm.takes_onednn_bf16(x, w, fused=True)
    assert actual.dtype == expected.dtype
    assert fused_bf16 == (autocast and cpu_gemm._onednn_bf16_available())
    if autocast:
        # oneDNN's bf16 product applies the activation before its one rounding to bf16,
        # F.linear then the activation round twice.
        assert_parity(actual, expected, ulps=BF16_ULPS, eps=BF16_EPS)
    else:
        assert_parity(actual, expected)


@pytest.mark.parametrize("shape", [(7, 32), (2, 3, 50, 96), (1, 1, 256)])
@pytest.mark.parametrize("operands", ["autocast", "bf16"])
def test_bf16_products_with_a_bias_fuse_it_and_equal_f_linear(shape, operands) -> None:
    """Under fast mode's autocast, or on bf16 operands, a linear with a bias is oneDNN's
    bf16 product with the bias fused: the same product as F.linear's."""
    x, w, b = _operands(*shape)
    autocast = operands == "autocast"
    if not autocast:
        x, w, b = x.bfloat16(), w.bfloat16(), b.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        fused = cpu_gemm.takes_onednn_bf16(x, w, fused=True)
        assert fused == cpu_gemm._onednn_bf16_available()
        assert not cpu_gemm.takes_onednn_bf16(x, w, fused=False)  # no bias: F.linear
        actual, expected = linear(x, w, b), F.linear(x, w, b)
    assert actual.dtype == expected.dtype == torch.bfloat16
    assert_parity(actual, expected, ulps=2, eps=BF16_EPS)


def test_bf16_route_leaves_float32_and_autograd_alone() -> None:
    x, w, _ = _operands(4, 16)
    assert not cpu_gemm.takes_onednn_bf16(x, w, fused=True)  # float32, no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cpu_gemm.takes_onednn_bf16(x.requires_grad_(), w, fused=True)


@pytest.mark.parametrize("rows", [7, 1024, 2500])  # one block, exactly one, three
def test_mlp_in_blocks_of_rows_equals_the_whole(rows, gemm_route) -> None:
    fc1, fc2 = nn.Linear(32, 128), nn.Linear(128, 16)
    x = torch.randn(rows, 32).view(1, rows, 32)
    with torch.inference_mode():
        actual, expected = mlp(x, fc1, fc2, "relu"), fc2(F.relu(fc1(x)))
    assert actual.shape == (1, rows, 16)
    assert_parity(actual, expected)


def test_strided_operands(gemm_route) -> None:
    """Transposed weights (the attention's values) and column slices of inputs."""
    x, w, b = _operands(64, 80)
    w_t = torch.randn(80, 48).t()
    assert_parity(linear(x[:, ::2], w[:, :40], b), F.linear(x[:, ::2], w[:, :40], b))
    assert_parity(linear(x, w_t), F.linear(x, w_t))


def test_autocast_autograd_and_other_dtypes_keep_f_linear(gemm_route) -> None:
    x, w, b = _operands(16, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not takes_onednn(x, w)
        assert linear(x, w, b).dtype == torch.bfloat16  # autocast still applies
    assert not takes_onednn(x.double(), w.double())
    w.requires_grad_(True)
    assert not takes_onednn(x, w)
    linear(x, w, b).sum().backward()
    assert w.grad is not None
    with torch.no_grad():
        assert takes_onednn(x, w) == (gemm_route == "onednn")


def test_compiled_graphs_keep_f_linear(gemm_route, monkeypatch) -> None:
    """torch.compile traces F.linear and lets inductor pick its kernels."""
    x, w, b = _operands(16, 32)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.no_grad():
        assert not takes_onednn(x, w, b)
        assert_parity(linear_act(x, w, b, "relu"), F.relu(F.linear(x, w, b)))


def test_linear_module_keeps_nn_linear_parameters(gemm_route) -> None:
    ours, plain = Linear(24, 12), nn.Linear(24, 12)
    assert isinstance(ours, nn.Linear)
    assert ours.state_dict().keys() == plain.state_dict().keys()
    ours.load_state_dict(plain.state_dict())
    x = torch.randn(5, 24)
    with torch.inference_mode():
        assert_parity(ours(x), plain(x))


def test_route_follows_the_environment_and_the_probe(monkeypatch) -> None:
    for forced, expected in (("blas", False), ("onednn", cpu_gemm._onednn_linear() is not None)):
        monkeypatch.setenv(cpu_gemm.ROUTE_ENV, forced)
        cpu_gemm.onednn_fp32_pays.cache_clear()
        assert cpu_gemm.onednn_fp32_pays() is expected
    monkeypatch.delenv(cpu_gemm.ROUTE_ENV)
    for speedup, expected in ((cpu_gemm.MIN_ONEDNN_SPEEDUP, True), (1.0, False)):
        monkeypatch.setattr(cpu_gemm, "onednn_speedup", lambda s=speedup: s)
        cpu_gemm.onednn_fp32_pays.cache_clear()
        assert cpu_gemm.onednn_fp32_pays() is expected
    cpu_gemm.onednn_fp32_pays.cache_clear()


def test_the_probe_measures_both_routes() -> None:
    speedup = cpu_gemm.onednn_speedup()
    assert speedup == 0.0 if cpu_gemm._onednn_linear() is None else speedup > 0.0


def test_the_probe_times_float32_even_when_first_asked_under_autocast(monkeypatch) -> None:
    # Fast mode's model may be the first to ask: under bf16 autocast F.linear would time
    # bf16 and the cached answer would keep oneDNN off for the whole process.
    products = []

    def spy(slow, fast, **_) -> float:
        products.extend((slow().dtype, fast().dtype))
        return 1.0

    monkeypatch.setattr(cpu_gemm, "speedup", spy)
    monkeypatch.setattr(cpu_gemm, "_PROBE_N", 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cpu_gemm.onednn_speedup.__wrapped__()
    assert products and set(products) == {torch.float32}


def test_speedup_compares_interleaved_calls_on_one_thread() -> None:
    """The route probes time one intra-op thread (another busy process then barely
    disturbs them), both sides in turn, and give the thread count back."""
    threads = torch.get_num_threads()
    seen: list[tuple[str, int]] = []

    def side(name: str, seconds: float):
        def call() -> None:
            seen.append((name, torch.get_num_threads()))
            time.sleep(seconds)

        return call

    ratio = cpu_gemm.speedup(side("slow", 0.004), side("fast", 0.001), rounds=3)
    assert torch.get_num_threads() == threads
    assert [name for name, _ in seen] == ["slow", "fast"] * 4  # one untimed call each first
    assert {n for _, n in seen} == {1}
    assert 2.0 < ratio < 8.0


def test_speedup_gives_the_threads_back_when_a_side_fails() -> None:
    threads = torch.get_num_threads()

    def boom() -> None:
        raise RuntimeError("no kernel")

    with pytest.raises(RuntimeError):
        cpu_gemm.speedup(boom, boom)
    assert torch.get_num_threads() == threads
