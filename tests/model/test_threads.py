"""Usable cores from the affinity mask and cgroup v1/v2 quotas (fake cgroup trees)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from model.kernels import threads


def _tree(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    proc_file = tmp_path / "proc_self_cgroup"
    proc_file.write_text(proc)
    return root, proc_file


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)


def test_v2_quota_caps_the_affinity(tmp_path, eight_cores) -> None:
    root, proc = _tree(tmp_path, "0::/app.slice/masklet\n", {"cpu.max": "max 100000\n"})
    assert threads.cgroup_cpu_limit(root, proc) is None
    assert threads.usable_cores(root, proc) == 8
    (root / "app.slice" / "masklet").mkdir(parents=True)
    (root / "app.slice" / "masklet" / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(root, proc) == pytest.approx(1.5)
    assert threads.usable_cores(root, proc) == 2  # rounded up


def test_v2_parent_quota_applies_and_smallest_wins(tmp_path, eight_cores) -> None:
    root, proc = _tree(
        tmp_path,
        "0::/a/b\n",
        {"a/cpu.max": "300000 100000", "a/b/cpu.max": "max 100000", "cpu.max": "max"},
    )
    assert threads.usable_cores(root, proc) == 3
    (root / "a" / "b" / "cpu.max").write_text("50000 100000")
    assert threads.usable_cores(root, proc) == 1


def test_v1_cfs_quota(tmp_path, eight_cores) -> None:
    root, proc = _tree(
        tmp_path,
        "4:memory:/x\n1:cpu,cpuacct:/docker/abc\n",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "400000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
    )
    assert threads.usable_cores(root, proc) == 4
    # -1 means no quota.
    (root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert threads.usable_cores(root, proc) == 8


def test_container_root_mount_and_garbage(tmp_path, eight_cores) -> None:
    # Inside a container /proc/self/cgroup may name a path that is not mounted.
    root, proc = _tree(tmp_path, "0::/not/mounted\n", {"cpu.max": "200000 100000"})
    assert threads.usable_cores(root, proc) == 2
    (root / "cpu.max").write_text("banana")
    assert threads.usable_cores(root, proc) == 8
    missing = tmp_path / "nothing"
    assert threads.usable_cores(missing, missing / "cgroup") == 8


def test_affinity_counts(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 5, 6}, raising=False)
    root, proc = _tree(tmp_path, "0::/\n", {})
    assert threads.usable_cores(root, proc) == 3


def test_decoder_threads_stay_low() -> None:
    assert [threads.decoder_threads(n) for n in (1, 2, 3, 4, 64)] == [1, 1, 1, 2, 2]


def test_prepare_environment_keeps_the_users_choice() -> None:
    env: dict[str, str] = {}
    threads.prepare_environment(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.prepare_environment(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"


def test_configure_threads_sets_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match=">= 1"):
            threads.configure_threads(0)
    finally:
        torch.set_num_threads(before)
