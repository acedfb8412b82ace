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


def test_a_slow_daily_rise_is_left_to_the_recent_rate() -> None:
    """A smooth swing the last minute's rate follows closely: no period forecasts it better."""
    times = arrivals(diurnal, 1500, 1, mean_rate=0.3, amplitude=0.8, period_seconds=3600.0)
    assert fitted(times, times[-1]) is None


def test_no_season_before_two_periods() -> None:
    times = arrivals(bursty, 2000, 0, on_seconds=30.0, off_seconds=270.0)
    assert fitted([t for t in times if t < 500.0], 500.0) is None  # under two periods of 300 s
    assert fitted(times, times[-1]) is not None


def test_the_history_is_bounded_and_keeps_its_clock() -> None:
    a = Arrivals()
    span = 2 * HISTORY_BINS * BIN + 5 * BIN
    t = 0.0
    while t < span:
        a.add(t)
        t += 7.0
    assert len(a.counts) <= 2 * HISTORY_BINS
    assert a.start is not None
    # The last bin still counts the last arrivals: the bins kept their times.
    last = a.counts[int((t - 7.0 - a.start) // BIN)]
    assert last >= 1
    assert a.closed(t) == len(a.counts) - 1 or a.closed(t) == len(a.counts)


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
