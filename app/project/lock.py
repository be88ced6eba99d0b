"""One writer per project: a lock file naming the process that holds it (plain Python).

The app holds `NAME.masklet.lock` beside the project it has open; `masklet batch` holds
`.masklet-batch.lock` inside its `--out` folder. The file is JSON: the holder's pid,
host name, process start time and when it took the lock. It is created complete and
atomically: written to a temporary file, then hard-linked to its name, which fails if
the name exists, so two starters never both win and a reader never sees half a lock.

A lock whose holder is gone never blocks: on this host, a pid that is not running, or a
running pid whose start time differs (the number was reused after a kill -9), is a dead
holder, and `acquire` takes the lock over. A holder on another host cannot be checked:
it counts as live, and only the user may take it over (`acquire(force=True)`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from app.safety.atomic import _pid_alive, new_temp_file

__all__ = [
    "BATCH_LOCK_NAME",
    "Holder",
    "LockHeld",
    "ProjectLock",
    "holder_alive",
    "lock_path_for_project",
    "read_holder",
]

BATCH_LOCK_NAME = ".masklet-batch.lock"
_MAX_LOCK_BYTES = 4096
_ATTEMPTS = 5


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: pid, host, the process's start time (None if unknown), since."""

    pid: int
    host: str
    started: str | None
    since: float

    @classmethod
    def this_process(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), process_start(os.getpid()), time.time())

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.since))
        return f"process {self.pid} on {self.host}, since {when}"


class LockHeld(Exception):
    """Another live (or unverifiable) process holds the lock."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        self.path, self.holder = path, holder
        who = holder.describe() if holder is not None else "another process"
        super().__init__(f"{path} is held by {who}")

    @property
    def on_this_host(self) -> bool:
        return self.holder is not None and self.holder.host == socket.gethostname()


def lock_path_for_project(project: str | os.PathLike[str]) -> Path:
    project = Path(project)
    return project.with_name(project.name + ".lock")


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot on Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def read_holder(path: Path) -> Holder | None:
    """The lock's holder, or None when the file is not a readable lock (damaged)."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(_MAX_LOCK_BYTES))
        holder = Holder(
            int(data["pid"]), str(data["host"]), data.get("started"), float(data["since"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if holder.started is not None and not isinstance(holder.started, str):
        return None
    return holder


def holder_alive(holder: Holder) -> bool:
    """False only when the holder surely is gone: on this host, its pid not running, or
    running with another start time (reused). Another host's holder counts as alive."""
    if holder.host != socket.gethostname():
        return True
    if not _pid_alive(holder.pid):
        return False
    if holder.started is None:
        return True
    now = process_start(holder.pid)
    return now is None or now == holder.started


class ProjectLock:
    """A held lock; `release` (or leaving a `with` block) removes it if still ours."""

    def __init__(self, path: Path, holder: Holder) -> None:
        self.path, self.holder = path, holder

    @classmethod
    def acquire(cls, path: str | os.PathLike[str], *, force: bool = False) -> ProjectLock:
        """Take the lock at `path`, taking over a dead holder's (or any, with `force`);
        raises `LockHeld` when a live process holds it, OSError when it cannot be written."""
        path = Path(path)
        me = Holder.this_process()
        for _ in range(_ATTEMPTS):
            if _link_new(path, me):
                return cls(path, me)
            holder = read_holder(path)
            if holder is not None and holder.pid == me.pid and holder.host == me.host:
                raise LockHeld(path, holder)  # this process already holds it elsewhere
            if holder is not None and holder_alive(holder) and not force:
                raise LockHeld(path, holder)
            _remove_if_unchanged(path, holder)
        raise LockHeld(path, read_holder(path))

    def release(self) -> None:
        if read_holder(self.path) == self.holder:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> ProjectLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _link_new(path: Path, holder: Holder) -> bool:
    """Create `path` holding `holder`, complete, only if it does not exist."""
    fd, temp = new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(asdict(holder)).encode())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def _remove_if_unchanged(path: Path, seen: Holder | None) -> None:
    """Remove a dead holder's lock, unless another starter replaced it meanwhile."""
    if read_holder(path) == seen:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
