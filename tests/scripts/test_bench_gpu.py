"""scripts/bench_gpu.py on a machine without CUDA: one line, exit 0; --prepare copies the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    # No GPU for the child even where the test machine has one: the message is the contract.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def test_without_cuda_it_says_so_and_exits_cleanly():
    result = _run("--variants", "tiny", "--objects", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "bench_gpu: no CUDA device here, nothing to measure; run it on a GPU machine"
    )
    assert "Traceback" not in result.stderr


def test_prepare_copies_the_oracles_pure_python_packages(tmp_path):
    result = _run("--prepare", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    for package in ("sam2", "hydra", "omegaconf", "antlr4", "iopath"):
        assert (tmp_path / "site" / package / "__init__.py").is_file()
    assert (tmp_path / "site" / "sam2" / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml").is_file()
    copied = list((tmp_path / "site").rglob("*"))
    assert not [p for p in copied if p.name == "__pycache__" or p.suffix == ".so"]


@pytest.mark.slow
def test_the_finders_cpu_dry_run_checks_parity_and_times_both_precisions():
    result = _run("--device", "cpu", "--small")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "SAM 3 finder parity, cpu against CPU float32" in out
    assert out.count(": ok") == 2 and "NOT ok" not in out, out
    assert "float32        first find" in out and "bf16 autocast  first find" in out
