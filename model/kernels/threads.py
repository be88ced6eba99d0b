"""How many threads the model, OpenCV and video decoding use: the cores this process may run on.

`os.cpu_count()` counts the machine's cores, not the ones this process may use: a
container or `taskset` restricts the CPU affinity, a cgroup CPU quota (Docker
`--cpus`, Kubernetes limits, systemd `CPUQuota`) caps the CPU time. Torch's default
of one intra-op thread per machine core then oversubscribes the process's share, and
every parallel region waits at its barrier for a thread the kernel has descheduled.

`usable_cores` is the smaller of the affinity mask and the quota (rounded up, as the
JVM and .NET do); `configure_threads` gives torch that many intra-op threads and keeps
OpenCV on the calling thread (its work here, the mask clean-up and frame conversions,
is small and runs next to torch's threads, not instead of them); `decoder_threads` is
what a video decoder may use next to the model (1 or 2: decoding 1080p H.264 is far
cheaper than a model step and must not take cores from it).

Policy, from a propagation of SAM 2.1 tiny at image size 256 on a 2-core machine already
loaded by other users' processes (frames/s, one run each, noisy; the ratios are the point):

    torch threads  OMP_WAIT_POLICY   alone   + a busy `while True: pass` process
    1              default           2.08    0.89
    2              default           0.36    0.18
    2              PASSIVE           2.28    2.33

With OpenMP's default (active) waiting, threads that finish a parallel region first spin
until the others arrive; when the kernel deschedules one thread to run another process,
its peers burn their time slices spinning and throughput collapses (5-10x here, the
issue saw 36x). Passive waiting (threads sleep at barriers) removes the collapse and
keeps the gain of several threads when the cores are free. So: intra-op threads = the
usable cores, with OMP_WAIT_POLICY=PASSIVE, which must be in the environment before
torch loads the OpenMP runtime (`prepare_environment`, called first thing by the CLI).

Passive waiting has a price when the cores are free: every barrier is a futex sleep and
wake. One float32 memory attention call at 1024 (about 800 parallel regions) took
2.7-4.0 s passive against 2.4-2.9 s with a short spin (GOMP_SPINCOUNT=10000-30000,
libgomp spins that long, then sleeps) on a quiet 2-core Intel Xeon; with one busy
process alongside, 4.4-5.5 s passive against 4.7-6.1 s with the short spin, and
libgomp's default spin reached 7.2-8.9 s beside two. Each gain is within this VM's
run-to-run noise, so the policy stays passive: it is never the one that collapses.
Checked again on a 2-core Xeon with AMX, a whole float32 tracked frame at 1024 (steady
state, two runs each): quiet, 3.34 s passive against 3.23-3.28 s with GOMP_SPINCOUNT=
20000; beside one busy process, 5.98-6.08 s passive against 6.46-6.49 s with the spin.

This module does not import torch at load time, so `prepare_environment` can still
set OpenMP's variables before torch (and with it the OpenMP runtime) loads.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

__all__ = [
    "configure_threads",
    "cgroup_cpu_limit",
    "decoder_threads",
    "prepare_environment",
    "usable_cores",
]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 mounts the cpu controller under one of these names.
_V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def affinity_cores() -> int:
    """Cores in this process's CPU affinity mask (all cores where there is no such call)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cgroup_cpu_limit(root: Path = _CGROUP_ROOT, proc_cgroup: Path = _PROC_CGROUP) -> float | None:
    """CPUs the process's cgroup quota allows (e.g. 1.5), or None if none applies.

    A quota anywhere between the process's cgroup and the hierarchy's root applies, so
    the smallest of them counts. Unreadable or malformed files count as no quota.
    """
    limits = [
        q
        for q in (_read_quota(d) for d in _cgroup_dirs(root, proc_cgroup))
        if q is not None and q > 0
    ]
    return min(limits) if limits else None


def usable_cores(root: Path = _CGROUP_ROOT, proc_cgroup: Path = _PROC_CGROUP) -> int:
    """Cores this process may use: its affinity mask, capped by any cgroup CPU quota."""
    cores = affinity_cores()
    quota = cgroup_cpu_limit(root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def decoder_threads(cores: int | None = None) -> int:
    """Threads a video decoder may use next to the model: 1, or 2 from 4 usable cores."""
    cores = usable_cores() if cores is None else cores
    return 2 if cores >= 4 else 1


def prepare_environment(env: MutableMapping[str, str] | None = None) -> None:
    """Set OpenMP's wait policy to passive, unless the user chose one (see the module doc).

    Only takes effect when called before torch is imported: the OpenMP runtime reads
    it once, when it loads.
    """
    env = os.environ if env is None else env
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_threads(cores: int | None = None) -> int:
    """Give torch `cores` (default: the usable cores) intra-op threads; returns that number."""
    import cv2
    import torch

    threads = usable_cores() if cores is None else cores
    if threads < 1:
        raise ValueError(f"thread count must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    return threads


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """The process's cgroup directories (v2 unified and v1 cpu) and their ancestors."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    dirs: list[Path] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            bases = [root]  # v2: "0::/path"
        elif "cpu" in controllers.split(","):
            bases = [root / name for name in _V1_DIRS]
        else:
            continue
        for base in bases:
            dirs.extend(_ancestors(base, rel))
    # Inside a container the cgroup is usually mounted as the root itself.
    dirs.extend([root, *(root / name for name in _V1_DIRS)])
    return list(dict.fromkeys(dirs))


def _ancestors(base: Path, rel: str) -> list[Path]:
    parts = [p for p in rel.split("/") if p and p != ".."]
    return [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _read_quota(directory: Path) -> float | None:
    """CPUs allowed by cpu.max (v2) or cpu.cfs_quota_us / cpu.cfs_period_us (v1)."""
    try:
        fields = (directory / "cpu.max").read_text().split()
        if fields and fields[0] != "max":
            period = int(fields[1]) if len(fields) > 1 else 100_000
            return int(fields[0]) / period if period > 0 else None
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
