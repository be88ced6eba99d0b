"""The ETA from the recent rate, against the mean-rate ETA it replaces."""

from __future__ import annotations

import math

import pytest

from app.headless.eta import RecentRate

TOTAL = 200
RAMP = 16  # frames while the memory bank fills; the cost per frame grows 1 s -> 17 s


def _frame_cost(i: int) -> float:
    return 1.0 + min(i, RAMP)


def _run(window: int) -> tuple[list[float], list[float], list[float]]:
    """Per done-count: recent-rate ETA, mean-rate ETA, and the true time left."""
    rate = RecentRate(window=window)
    now, recent, mean, truth = 0.0, [], [], []
    rate.update(0, now)
    costs = [_frame_cost(i) for i in range(TOTAL)]
    for done in range(1, TOTAL + 1):
        now += costs[done - 1]
        rate.update(done, now)
        recent.append(rate.eta(TOTAL))
        mean.append((TOTAL - done) * now / done)
        truth.append(sum(costs[done:]))
    return recent, mean, truth


def test_eta_does_not_climb_once_the_memory_bank_is_full():
    window = 10
    recent, mean, truth = _run(window)
    settled = RAMP + window  # from here on the window holds only full-bank frames
    after = recent[settled:]
    assert all(b <= a for a, b in zip(after, after[1:], strict=False))
    for got, want in zip(after, truth[settled:], strict=True):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    # The mean-rate ETA, over the same frames, keeps climbing (the bug this replaces)
    # and is far below the truth.
    assert max(mean[settled:]) > mean[settled] + 100
    assert mean[settled] < 0.75 * truth[settled]


def test_rate_unknown_until_progress_is_seen():
    rate = RecentRate(warmup=0, min_steps=1)
    assert rate.rate == 0 and math.isinf(rate.eta(10))
    rate.update(0, 5.0)
    assert math.isinf(rate.eta(10))
    rate.update(0, 6.0)
    assert rate.rate == 0 and math.isinf(rate.eta(10))
    rate.update(2, 7.0)
    assert rate.rate == pytest.approx(1.0) and rate.eta(10) == pytest.approx(8.0)


def test_estimating_until_frames_that_cost_what_the_rest_will():
    """The issue's run: a cheap prompted frame (0.06 s), then 3 s frames. The old rate
    said 16.92 frames/s after frame 1; now it is unknown until two 3 s frames are in."""
    rate = RecentRate()
    rate.update(0, 0.0)
    rate.update(1, 0.06)  # the prompted frame: read back, not computed
    assert rate.estimating and math.isinf(rate.eta(100))
    rate.update(2, 3.06)  # one representative frame is not yet a rate
    assert rate.estimating
    rate.update(3, 6.06)
    assert not rate.estimating
    assert rate.rate == pytest.approx(1 / 3)
    assert rate.eta(100) == pytest.approx(97 * 3)


def test_untypical_steps_are_left_out_of_the_rate():
    """Frames whose embeddings were computed ahead take 0.5 s instead of 4 s: they do
    not count, so the first rate is that of the frames still to come."""
    rate = RecentRate(warmup=0)
    rate.update(0, 0.0)
    now = 0.0
    for done in range(1, 7):  # six cached frames
        now += 0.5
        rate.update(done, now, typical=False)
        assert rate.estimating
    for done in range(7, 10):
        now += 4.0
        rate.update(done, now)
    assert rate.rate == pytest.approx(0.25)
    assert rate.eta(20) == pytest.approx(11 * 4.0)


def test_window_keeps_at_least_min_seconds_of_fast_steps():
    rate = RecentRate(window=2, min_seconds=1.0, warmup=0)
    for done in range(0, 21):
        rate.update(done, done * 0.1)  # 10 steps/s, 0.1 s apart
    # Over the last 2 steps alone the rate would be the same here; the span is what
    # the floor guarantees: samples from at least 1 s back are kept.
    assert rate.rate == pytest.approx(10.0)
    rate.update(21, 2.0 + 1.0)  # one slow step of 0.9 s: over >= 1 s, not over it alone
    assert 1.0 < rate.rate < 10.0


def test_a_restarted_count_starts_a_new_rate():
    rate = RecentRate(window=4, min_seconds=0.0, warmup=0, min_steps=1)
    for done in range(5):
        rate.update(done, float(done))  # 1/s
    rate.update(0, 10.0)
    rate.update(4, 11.0)  # 4/s in the new run only
    assert rate.rate == pytest.approx(4.0)


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="window"):
        RecentRate(window=0)
    with pytest.raises(ValueError, match="warmup"):
        RecentRate(min_steps=0)


def test_app_progress_eta_uses_the_recent_rate():
    from app.gui.worker.jobs import Progress

    progress = Progress(request_id=1, done=20, total=120, fps=10.0, recent_fps=2.0)
    assert progress.eta_s == pytest.approx(50.0)  # 100 frames left at 2/s, not at 10/s
    # No recent rate yet: the mean since the start includes cheap first frames; no guess.
    assert math.isinf(Progress(1, 20, 120, 10.0).eta_s)


def test_app_rate_reads_in_frames_per_second_or_seconds_per_frame():
    from app.gui.window.status_bar import format_rate

    assert format_rate(2.94) == "2.9 frames/s"
    assert format_rate(0.25) == "0.25 frames/s"
    assert format_rate(1 / 31.2) == "31 s/frame"  # not "0.0 frames/s"
