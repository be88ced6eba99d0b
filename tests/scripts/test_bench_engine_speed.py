"""scripts/bench_engine_speed.py: runs stepped in turn, stage clocks per run, a smoke run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import StageClock, interleaved  # noqa: E402


def _run(name: str, count: int, log: list[str]):
    for i in range(count):
        log.append(f"{name}{i}")
        yield i


def test_interleaved_steps_each_run_once_a_round_and_rotates_the_first():
    log: list[str] = []
    runs = {name: _run(name, 3, log) for name in "abc"}
    times = interleaved(runs, 3)
    assert log == ["a0", "b0", "c0", "b1", "c1", "a1", "c2", "a2", "b2"]
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for ts in times.values() for t in ts)


def test_interleaved_drops_a_run_that_ends_early():
    log: list[str] = []
    times = interleaved({"short": _run("s", 1, log), "long": _run("l", 4, log)}, 4)
    assert len(times["short"]) == 1 and len(times["long"]) == 4
    assert log.count("l3") == 1


class _Model(nn.Module):
    """The four modules StageClock hooks, as plain layers."""

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Linear(4, 4)
        self.memory_attention = nn.Linear(4, 4)
        self.memory_encoder = nn.Linear(4, 4)
        self.sam_prompt_encoder = nn.Linear(4, 4)
        self.sam_mask_decoder = nn.Linear(4, 4)
        self.sam_mask_decoder.conv_s0 = nn.Linear(4, 4)
        self.sam_mask_decoder.conv_s1 = nn.Linear(4, 4)


def _frames(model: _Model, count: int):
    x = torch.ones(1, 4)
    for _ in range(count):
        model.image_encoder(x)
        model.memory_attention(x)
        yield


def test_two_clocks_on_one_model_each_time_only_their_own_steps():
    model = _Model()
    first, second = StageClock(model), StageClock(model)
    with first.installed(), second.installed():
        runs = {
            "first": first.clocked(_frames(model, 3)),
            "second": second.clocked(_frames(model, 2)),
        }
        times = interleaved(runs, 3)
    assert len(times["first"]) == 3 and len(times["second"]) == 2
    # One entry per step (the second's last step found its frames ended).
    assert len(first.seconds) == 3 and len(second.seconds) == 3
    for clock in (first, second):
        stepped = [row for row in clock.seconds if row]
        assert all(set(row) == {"image encoder", "memory attention"} for row in stepped)
    assert not second.seconds[-1]
    assert not first.active and not second.active


@pytest.mark.slow
def test_smoke_run_prints_every_table():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "scripts" / "bench_engine_speed.py"
    args = ["--image-size", "256", "--frames", "4", "--objects", "1", "--ref-objects", "1"]
    result = subprocess.run(
        [sys.executable, str(script), *args, "--skip-transformers"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for line in ("1 object(s)", "1 obj exact: memory attention", "ours exact, 1 object(s)"):
        assert line in out
    assert "reference, 1 object(s)" in out  # its clicks
    assert "GEMM throughput over the run" in out
    assert "not judged here" in out
