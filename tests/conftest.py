import os
import sys
from pathlib import Path

# Qt must never try to open a real display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# tests/oracle.py and friends are importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _bf16_speed_is_not_measured(monkeypatch):
    """Precision "auto" on a CPU with bf16 flags also times bf16 against float32
    (`model.engine.precision.cpu_bf16_speedup`); tests take a fixed answer, so what they
    check does not depend on the CPU they run on. Tests of the probe call it directly."""
    import model.engine.precision as precision

    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 2.0)


@pytest.fixture(params=["blas", "onednn"])
def gemm_route(request, monkeypatch) -> str:
    """Float32 CPU products on each route of `model.kernels.cpu_gemm`, whichever this CPU would
    pick."""
    import model.kernels.cpu_gemm as cpu_gemm

    if request.param == "onednn" and cpu_gemm._onednn_linear() is None:
        pytest.skip("this torch has no oneDNN linear")
    monkeypatch.setenv(cpu_gemm.ROUTE_ENV, request.param)
    cpu_gemm.onednn_fp32_pays.cache_clear()
    yield request.param
    cpu_gemm.onednn_fp32_pays.cache_clear()
