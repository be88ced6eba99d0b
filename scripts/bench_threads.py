"""--threads-check: ours with 1 thread against the default thread policy, under a busy peer.

The app shares the machine with whatever else runs; a busy process takes one core
for the whole check, so a thread count that oversubscribes the cores shows here.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import torch
from bench_common import click

FRAMES = 6


def _frames_per_s(model, video, open_session) -> float:
    from model.engine.session import Prompt

    session = open_session(model, video, "exact")
    session.add_prompt(0, 1, Prompt(points=np.array([click(1)]), labels=np.array([1])))
    gen = session.propagate(mode="full")
    next(gen)
    start = time.perf_counter()
    done = sum(1 for _ in gen)
    return done / (time.perf_counter() - start)


def threads_check(model, video, open_session) -> None:
    default = torch.get_num_threads()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        rates = {}
        for threads in (1, default):
            torch.set_num_threads(threads)
            rates[threads] = _frames_per_s(model, video, open_session)
    finally:
        torch.set_num_threads(default)
        busy.kill()
        busy.wait()
    print(f"\nThreads, 1 object, {len(video) - 1} frames, one busy process alongside (frames/s)")
    for threads, rate in rates.items():
        label = "1 thread" if threads == 1 else f"default ({threads} threads)"
        print(f"  {label:<24s} {rate:6.2f}")
