"""One writer per project: the lock file (issue 28, item 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app.project import lock as project_lock
from app.project.lock import Holder, LockHeld, ProjectLock, holder_alive, read_holder


@pytest.fixture
def sleeper():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child
    child.kill()
    child.wait()


def _plant(path: Path, holder: Holder) -> None:
    path.write_text(json.dumps(holder.__dict__))


def _holder_of(pid: int) -> Holder:
    return replace(Holder.this_process(), pid=pid, started=project_lock.process_start(pid))


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path):
    path = tmp_path / "a.masklet.lock"
    lock = ProjectLock.acquire(path)
    holder = read_holder(path)
    assert holder is not None and holder.pid == os.getpid() and holder == lock.holder
    assert holder.started == project_lock.process_start(os.getpid())
    lock.release()
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary left behind


def test_a_live_holder_refuses_and_its_lock_stays(tmp_path, sleeper):
    path = tmp_path / "a.masklet.lock"
    _plant(path, _holder_of(sleeper.pid))
    with pytest.raises(LockHeld, match=f"process {sleeper.pid}") as held:
        ProjectLock.acquire(path)
    assert held.value.on_this_host and read_holder(path).pid == sleeper.pid


def test_a_dead_holder_is_taken_over(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path = tmp_path / "a.masklet.lock"
    _plant(path, replace(Holder.this_process(), pid=child.pid, started="1"))
    assert not holder_alive(read_holder(path))
    lock = ProjectLock.acquire(path)
    assert read_holder(path).pid == os.getpid()
    lock.release()


def test_a_reused_pid_is_a_stale_lock(tmp_path, sleeper):
    """The pid runs, but started at another time than the holder did: a kill -9 and reuse."""
    path = tmp_path / "a.masklet.lock"
    _plant(path, replace(_holder_of(sleeper.pid), started="12345"))
    assert not holder_alive(read_holder(path))
    ProjectLock.acquire(path).release()


def test_another_hosts_holder_counts_as_live_unless_forced(tmp_path):
    path = tmp_path / "a.masklet.lock"
    _plant(path, replace(Holder.this_process(), pid=999999, host="elsewhere.example"))
    with pytest.raises(LockHeld) as held:
        ProjectLock.acquire(path)
    assert not held.value.on_this_host
    lock = ProjectLock.acquire(path, force=True)
    assert read_holder(path).host != "elsewhere.example"
    lock.release()


def test_a_damaged_lock_does_not_block(tmp_path):
    path = tmp_path / "a.masklet.lock"
    path.write_bytes(b"\x00garbage")
    ProjectLock.acquire(path).release()


def test_release_leaves_a_lock_someone_else_took_over(tmp_path, sleeper):
    path = tmp_path / "a.masklet.lock"
    lock = ProjectLock.acquire(path)
    _plant(path, _holder_of(sleeper.pid))
    lock.release()
    assert read_holder(path).pid == sleeper.pid


def test_racing_starters_get_one_lock(tmp_path):
    """Atomic: of many threads starting at once exactly one wins."""
    path = tmp_path / "a.masklet.lock"
    barrier, won, refused = threading.Barrier(8), [], []

    def start() -> None:
        barrier.wait()
        try:
            won.append(ProjectLock.acquire(path))
        except LockHeld:
            refused.append(1)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7


def test_a_killed_holder_does_not_block_the_next_start(tmp_path):
    path = tmp_path / "a.masklet.lock"
    code = (
        "import sys, time; from app.project.lock import ProjectLock; "
        f"ProjectLock.acquire({str(path)!r}); print('held', flush=True); time.sleep(120)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"held"
        with pytest.raises(LockHeld):
            ProjectLock.acquire(path)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
        child.wait()
    assert read_holder(path).pid == child.pid  # left behind by the kill ...
    ProjectLock.acquire(path).release()  # ... and no obstacle
