"""model.kernels.allocator: glibc's malloc keeps freed memory for the next frame, unless the user
set glibc's own variables; nothing happens without glibc."""

from __future__ import annotations

import subprocess
import sys

import pytest

from model.kernels import allocator
from model.kernels.allocator import TRIM_THRESHOLD, retain_freed_memory


class FakeLibc:
    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


def test_one_arena_no_mmap_and_a_high_trim_threshold():
    libc = FakeLibc()
    applied = retain_freed_memory(env={}, libc=libc)
    assert applied == ["MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"]
    assert libc.calls == [(-8, 1), (-4, 0), (-1, TRIM_THRESHOLD)]


@pytest.mark.parametrize(
    "env",
    [
        {"MALLOC_MMAP_MAX_": "65536"},
        {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=65536:glibc.malloc.check=0"},
    ],
)
def test_the_users_own_settings_are_kept(env):
    libc = FakeLibc()
    assert "MALLOC_MMAP_MAX_" not in retain_freed_memory(env=env, libc=libc)
    assert all(param != -4 for param, _ in libc.calls)
    assert (-8, 1) in libc.calls and (-1, TRIM_THRESHOLD) in libc.calls


def test_refused_settings_are_not_reported():
    assert retain_freed_memory(env={}, libc=FakeLibc(result=0)) == []


def test_without_glibc_nothing_happens(monkeypatch):
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert allocator._glibc() is None
    assert retain_freed_memory(env={}) == []


@pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc")
def test_real_glibc_takes_the_settings_and_large_tensors_still_work():
    # In a child process: the settings last for the whole process.
    code = (
        "from model.kernels.allocator import retain_freed_memory\n"
        "print(','.join(retain_freed_memory(env={})))\n"
        "import threading, torch\n"
        "def work():\n"
        "    for _ in range(3):\n"
        "        x = torch.ones(80 << 20, dtype=torch.uint8)  # above a 64 MB thread heap\n"
        "        assert int(x.sum()) == 80 << 20\n"
        "t = threading.Thread(target=work); t.start(); t.join(); work()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["MALLOC_ARENA_MAX,MALLOC_MMAP_MAX_,MALLOC_TRIM_THRESHOLD_"]
