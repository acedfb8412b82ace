"""The traffic's season (policies.season): a rhythm is found and forecast, and none is found
where there is none."""

from __future__ import annotations

import random

import pytest

from dacirco.policies.season import BIN, HISTORY_BINS, Arrivals, Season, fit
from dacirco.policies.stats import LONG_WINDOW, SHORT_WINDOW, StatsTracker
from dacirco.scenario.generate import bursty, diurnal, poisson


def fitted(times: list[float], now: float) -> Season | None:
    a = Arrivals()
    for t in times:
        a.add(t)
    return fit(a, now, SHORT_WINDOW, LONG_WINDOW)


def arrivals(gen, n: int, seed: int, **params: float) -> list[float]:  # type: ignore[no-untyped-def]
    """The arrival times of ``n`` requests of a scenario generator."""
    out, at = [], 0.0
    for r in gen(n, random.Random(seed), **params):
        at += r.delay
        out.append(at)
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("on", "off"), [(30.0, 120.0), (60.0, 120.0), (20.0, 280.0)])
def test_periodic_bursts_are_found_and_forecast(seed: int, on: float, off: float) -> None:
    times = arrivals(bursty, 1500, seed, on_seconds=on, off_seconds=off)
    now = times[-1]
    season = fitted(times, now)
    assert season is not None
    assert season.period == pytest.approx(on + off)
    assert season.error < season.error_flat
    # The next burst (the generator starts each period with one), then the quiet after it.
    period = on + off
    next_burst = (now // period + 1) * period
    assert season.rate(next_burst, next_burst + on) == pytest.approx(1.0, rel=0.3)
    assert season.rate(next_burst + on + BIN, next_burst + period - BIN) < 0.2


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", [0.05, 0.3, 2.0])
def test_steady_traffic_has_no_season(seed: int, rate: float) -> None:
    times = arrivals(poisson, 2000, seed, rate=rate)
    # Looked for as the tracker does: once a minute of traffic, all along the run.
    for k in range(1, 60):
        assert fitted(times, times[-1] * k / 60) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_a_slow_swing_has_no_false_short_period(seed: int) -> None:
    """An hourly swing over seven hours, looked for once a minute all along: never a short
    period (a few periods' stretches averaged look like a trend's moving average)."""
    times = arrivals(diurnal, 8000, seed, mean_rate=0.3, amplitude=0.8, period_seconds=3600.0)
    for k in range(1, 120):
        season = fitted(times, times[-1] * k / 120)
        assert season is None or season.period % 3600.0 == 0.0, season.period


def test_a_rhythm_without_noise_is_found() -> None:
    """Twenty requests at the start of every minute: the same gain at every stretch."""
    times = [m * 60.0 + i * 0.1 for m in range(120) for i in range(20)]
    season = fitted(times, times[-1])
    assert season is not None and season.period == 60.0


def test_a_silence_counts_as_none() -> None:
    """Bursts every 150 s, then nothing: the silent bins are counted as empty, so the
    forecast falls as the silence lasts, and a stretch no period back holds is None."""
    times = [t for t in arrivals(bursty, 1500, 0) if t < 3000.0]
    a = Arrivals()
    for t in times:
        a.add(t)
    assert a.closed(3600.0) == int((3600.0 - (a.start or 0.0)) // BIN) > len(a.counts)
    burst = fit(a, 3000.0, SHORT_WINDOW, LONG_WINDOW)
    late = fit(a, 3600.0, SHORT_WINDOW, LONG_WINDOW)
    assert burst is not None and late is not None
    # The next burst, from the bursts before; and after ten minutes of silence, from them.
    assert burst.rate(3150.0, 3180.0) == pytest.approx(1.0, rel=0.3)
    assert late.rate(3600.0, 3630.0) == 0.0
    # More than the periods it averages ahead: no forecast (the policy keeps its rate).
    assert burst.rate(3000.0 + 10 * 150.0, 3000.0 + 10 * 150.0 + 30.0) is None


def test_no_season_before_two_periods() -> None:
    times = arrivals(bursty, 2000, 0, on_seconds=30.0, off_seconds=270.0)
    assert fitted([t for t in times if t < 500.0], 500.0) is None  # under two periods of 300 s
    assert fitted(times, times[-1]) is not None


def test_the_history_is_bounded_and_keeps_its_clock() -> None:
    """Each bin counts a different number of requests (its index mod 7): after trims and
    a jump of five days, every bin kept still counts what came in it, at its own time."""
    a = Arrivals()
    for i in range(2 * HISTORY_BINS + 500):
        for _ in range(i % 7):
            a.add(i * BIN + 1.0)
    assert a.start is not None and len(a.counts) <= 2 * HISTORY_BINS
    first = round(a.start / BIN)
    assert all(n == (first + j) % 7 for j, n in enumerate(a.counts))
    jump = (2 * HISTORY_BINS + 500) * BIN + 5 * 86_400.0
    a.add(jump)  # five days later: the old bins all leave, none is made twice
    assert len(a.counts) == HISTORY_BINS and a.counts[-1] == 1 and sum(a.counts) == 1
    assert a.start + (HISTORY_BINS - 1) * BIN <= jump < a.start + HISTORY_BINS * BIN
    a.add(float("nan"))  # not a time: ignored
    assert sum(a.counts) == 1


def test_the_tracker_gives_the_season_to_every_view() -> None:
    t = StatsTracker()
    times = arrivals(bursty, 1500, 3)
    for at in times:
        t.arrival(at)
    s = t.snapshot(times[-1])
    assert s.season is not None and s.season.period == pytest.approx(150.0)
    steady = StatsTracker()
    for at in arrivals(poisson, 1500, 3, rate=0.5):
        steady.arrival(at)
    assert steady.snapshot(3000.0).season is None


def test_the_season_is_looked_for_only_when_read() -> None:
    t = StatsTracker()
    for at in arrivals(bursty, 1500, 3):
        t.arrival(at)
    s = t.snapshot(4000.0)
    assert "season" not in vars(s)  # a policy that reads the rates only: no fit
    assert s.season is not None and "season" in vars(s)


def test_a_strong_rhythm_is_found_from_few_stretches() -> None:
    """Bursts of 2 requests/s for 30 s every 150 s: at 420 s, the nine 30 s stretches after
    the first period mostly tell the rhythm from chance already (Student's t at 8 degrees
    of freedom: 4.28; a test that waits for ten stretches finds none before 480 s); at
    360 s, seven are fewer than the test takes; at 480 s, every run has it."""
    found_at = {}
    for seed in range(8):
        times = arrivals(bursty, 1000, seed, on_rate=2.0)
        seasons = {now: fitted([t for t in times if t < now], now) for now in (360, 420, 480)}
        assert seasons[360] is None
        assert seasons[480] is not None and seasons[480].period == 150.0
        found_at[seed] = 420 if seasons[420] is not None else 480
    assert sum(at == 420 for at in found_at.values()) >= 5, found_at
