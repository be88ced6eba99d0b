"""The speed benchmark's tables and its goals, printed as met / not met."""

from __future__ import annotations

import numpy as np
from bench_common import STAGES, Goal, fmt, percentile, print_table, steady

# Stages without matrix work (connected components, copies) have no FLOP floor.
_FLOOR_MIN_FLOPS = 1e6
_PRECISION_DTYPE = {"exact": "fp32", "fast": "bf16"}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b > 0:
        return None
    return a / b


def report(args, ours, peers, throughput, *, goals: bool) -> None:
    s = {key: steady(run.times) for key, run in ours.items()}
    p = {key: steady(times) for key, times in peers.items()}
    rows = []
    for n in args.objects:
        ref, hf = p.get(("reference", n)), p.get(("transformers", n))
        exact, fast = s.get(("exact", n)), s.get(("fast", n))
        rows.append(
            (
                f"{n} object(s)",
                fmt(ref),
                fmt(hf),
                fmt(exact),
                fmt(fast),
                fmt(_ratio(ref, exact), 2),
                fmt(_ratio(ref, fast), 2),
                fmt(_ratio(hf, fast), 2),
            )
        )
    header = ("s/frame (steady)", "reference", "transformers", "ours exact", "ours fast")
    print_table(
        "Propagation, seconds per frame at steady state (ratios > 1: we are faster)",
        (*header, "ref/exact", "ref/fast", "hf/fast"),
        rows,
    )
    worst = _stage_table(args, ours, throughput)
    _latency_table(args, ours, peers)
    if not goals:
        print("\nGoals are judged at --image-size 1024 with --frames >= 12 only; not judged here.")
        return
    print("\nGoals")
    for goal in _goals(s, p, ours, worst):
        print(goal.line())


def _stage_table(args, ours, throughput) -> dict[str, float]:
    """Prints the per-stage table; returns the worst time/floor per precision."""
    rows, worst = [], {}
    for (precision, n), run in ours.items():
        tput = throughput[_PRECISION_DTYPE[precision]]
        for stage in (*STAGES, "storage"):
            seconds = run.stages.get(stage, 0.0)
            flops = run.flops.get(stage, 0)
            floor = flops / tput if flops >= _FLOOR_MIN_FLOPS else None
            ratio = _ratio(seconds, floor)
            if ratio is not None:
                worst[precision] = max(worst.get(precision, 0.0), ratio)
            rows.append(
                (
                    f"{n} obj {precision}: {stage}",
                    fmt(seconds),
                    fmt(flops / 1e9, 2) if flops else "-",
                    fmt(floor),
                    fmt(ratio, 2),
                )
            )
    print_table(
        "Per stage, seconds per frame (steady) against the floor = FLOPs / GEMM throughput "
        "('-': no matrix work, no FLOP floor)",
        ("stage", "seconds", "GFLOP", "floor s", "time/floor"),
        rows,
    )
    return worst


def _latency_table(args, ours, peers) -> None:
    rows = []
    for (precision, n), run in ours.items():
        rows.append(
            (
                f"ours {precision}, {n} object(s)",
                fmt(percentile(run.clicks, 50) * 1e3, 1),
                fmt(percentile(run.clicks, 95) * 1e3, 1),
                fmt(run.cancel_s),
            )
        )
    for (name, n), times in peers.items():
        if name == "reference click":
            rows.append(
                (
                    f"reference, {n} object(s)",
                    fmt(percentile(times, 50) * 1e3, 1),
                    fmt(percentile(times, 95) * 1e3, 1),
                    "-",
                )
            )
    print_table(
        "Correction click on a tracked, encoded frame (10 clicks) and cancel mid-frame",
        ("", "click p50 ms", "click p95 ms", "cancel s"),
        rows,
    )


def _max(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return max(values) if values else None


def _goals(s, p, ours, worst) -> list[Goal]:
    ref1, ref3 = p.get(("reference", 1)), p.get(("reference", 3))
    hf1, hf3 = p.get(("transformers", 1)), p.get(("transformers", 3))
    ex1, ex3, ex10 = s.get(("exact", 1)), s.get(("exact", 3)), s.get(("exact", 10))
    fa1, fa3 = s.get(("fast", 1)), s.get(("fast", 3))
    clicks = _max(percentile(r.clicks, 95) * 1e3 for (m, _), r in ours.items() if m == "exact")
    cancel = _max(r.cancel_s for r in ours.values())
    return [
        Goal("exact, 1 object: reference / ours (clean-up on)", _ratio(ref1, ex1), 1.2),
        Goal("exact, 3 objects: reference / ours (clean-up on)", _ratio(ref3, ex3), 1.3),
        Goal("fast, 1 object: reference fp32 / ours", _ratio(ref1, fa1), 2.0),
        Goal("fast, 1 object: transformers / ours", _ratio(hf1, fa1), 2.0),
        Goal("fast, 3 objects: reference fp32 / ours", _ratio(ref3, fa3), 1.5),
        Goal("fast, 3 objects: transformers / ours", _ratio(hf3, fa3), 1.5),
        Goal("exact: 10 objects / 1 object, s/frame", _ratio(ex10, ex1), 6.0, at_most=True),
        Goal("correction click p95, ms (worst over object counts)", clicks, 100.0, at_most=True),
        Goal("cancel, s (worst)", cancel, 1.0, at_most=True),
        Goal("exact (fp32): worst stage time / floor", worst.get("exact"), 1.3, at_most=True),
        Goal("fast (bf16): worst stage time / floor", worst.get("fast"), 1.3, at_most=True),
    ]
