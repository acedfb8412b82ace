"""Scenario generators: reproducible, and with the statistics they promise."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from itertools import accumulate

import pytest

from dacirco.scenario.generate import (
    CLASSIC_MOVIES,
    GENERATORS,
    bursty,
    classic,
    diurnal,
    generate,
    poisson,
)

N = 20000


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_scenario_other_seed_other_scenario(name):
    first = generate(name, 200, random.Random(42))
    assert first == generate(name, 200, random.Random(42))
    assert first != generate(name, 200, random.Random(43))
    assert len(first) == 200 and first[0].delay == 0
    assert all(r.delay >= 0 for r in first)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_zero_requests(name):
    assert generate(name, 0, random.Random(1)) == []


def test_classic_statistics():
    requests = classic(N, random.Random(1))
    gaps = [r.delay for r in requests[1:]]
    assert statistics.fmean(gaps) == pytest.approx(6.0, abs=0.06)
    assert statistics.stdev(gaps) == pytest.approx(2.0, abs=0.06)
    assert min(gaps) >= 0.1
    bitrates = [r.bitrate for r in requests]
    assert min(bitrates) >= 500 and max(bitrates) <= 8000
    assert statistics.fmean(bitrates) == pytest.approx(4250, abs=60)
    assert all(isinstance(b, int) for b in bitrates)
    speeds = Counter(r.speed for r in requests)
    assert set(speeds) == {"ultrafast", "fast"}
    assert speeds["ultrafast"] / N == pytest.approx(0.5, abs=0.02)
    movies = Counter(r.movie for r in requests)
    assert set(movies) <= set(CLASSIC_MOVIES)
    for i in range(10):
        assert movies[f"bbb_{i}.mp4"] / N == pytest.approx((i + 1) / 55, abs=0.01)


def test_classic_parameters_can_be_overridden():
    requests = classic(2000, random.Random(2), mean=1.0, sd=0.5, floor=0.5, movies=["a.mp4"])
    gaps = [r.delay for r in requests[1:]]
    assert min(gaps) >= 0.5
    assert statistics.fmean(gaps) == pytest.approx(1.1, abs=0.1)
    assert {r.movie for r in requests} == {"a.mp4"}


def test_poisson_mean_gap_is_one_over_rate():
    gaps = [r.delay for r in poisson(N, random.Random(1), rate=2.0)[1:]]
    assert statistics.fmean(gaps) == pytest.approx(0.5, rel=0.03)
    # exponential: the standard deviation equals the mean
    assert statistics.stdev(gaps) == pytest.approx(0.5, rel=0.05)


def _times(requests):
    return list(accumulate(r.delay for r in requests))


def test_bursty_rates_differ_between_on_and_off():
    on_s, off_s = 30.0, 60.0
    times = _times(bursty(5000, random.Random(1), 2.0, 0.1, on_s, off_s))
    cycles = math.floor(times[-1] / (on_s + off_s))
    end = cycles * (on_s + off_s)
    phase = [t % (on_s + off_s) for t in times if t < end]
    on_rate = sum(p < on_s for p in phase) / (cycles * on_s)
    off_rate = sum(p >= on_s for p in phase) / (cycles * off_s)
    print(f"bursty: on {on_rate:.3f}/s, off {off_rate:.3f}/s")
    assert on_rate == pytest.approx(2.0, rel=0.1)
    assert off_rate == pytest.approx(0.1, rel=0.3)


def test_bursty_with_silent_off_periods():
    times = _times(bursty(500, random.Random(1), 5.0, 0.0, 10.0, 50.0))
    # times count from the first arrival (here before 1 s): none falls in an off period
    assert times[1] < 1.0
    assert all((t + 1.0) % 60.0 < 11.0 for t in times)


def test_diurnal_rate_follows_the_sine():
    period = 100.0
    times = _times(
        diurnal(N, random.Random(1), mean_rate=1.0, amplitude=0.8, period_seconds=period)
    )
    cycles = math.floor(times[-1] / period)
    phase = [(t % period) / period for t in times if t < cycles * period]
    window = cycles * period / 4
    peak = sum(0.125 <= p < 0.375 for p in phase) / window
    trough = sum(0.625 <= p < 0.875 for p in phase) / window
    overall = len(phase) / (cycles * period)
    print(f"diurnal: peak {peak:.3f}/s, trough {trough:.3f}/s, overall {overall:.3f}/s")
    # mean rate over each quarter: 1 +/- 0.8 * (2 * sqrt(2) / pi)
    assert peak == pytest.approx(1 + 0.8 * 2 * math.sqrt(2) / math.pi, rel=0.1)
    assert trough == pytest.approx(1 - 0.8 * 2 * math.sqrt(2) / math.pi, rel=0.2)
    assert overall == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("poisson", {"rate": 0}),
        ("bursty", {"on_rate": 0}),
        ("diurnal", {"amplitude": 1.5}),
        ("nope", {}),
    ],
)
def test_bad_parameters_are_refused(name, params):
    with pytest.raises(ValueError):
        generate(name, 3, random.Random(1), **params)


def test_registry_documents_every_generator():
    for info in GENERATORS.values():
        assert info.doc and callable(info.function)


@pytest.mark.parametrize(
    ("movies", "weights"),
    [(CLASSIC_MOVIES, None), (("a.mp4", "b.mp4", "c.mp4"), None), (("a.mp4", "b.mp4"), (3, 1))],
)
def test_the_draws_are_those_of_the_random_api(movies, weights):
    """Each request's movie, bitrate and speed are the numbers ``rng.choices``,
    ``rng.randint`` and ``rng.choice`` give from the same generator state."""
    rng = random.Random(7)
    made = poisson(500, rng, rate=2.0, movies=movies, weights=weights)
    ref = random.Random(7)
    cum = None  # uniform: other movies without weights
    if weights is not None:
        cum = list(accumulate(weights))
    elif movies == CLASSIC_MOVIES:
        cum = list(accumulate((i + 1) / 55 for i in range(10)))
    for i, r in enumerate(made):
        delay = 0.0 if i == 0 else ref.expovariate(2.0)
        movie = ref.choices(movies, cum_weights=cum)[0]
        bitrate = ref.randint(500, 8000)
        speed = ref.choice(("ultrafast", "fast"))
        assert (r.delay, r.movie, r.bitrate, r.speed) == (round(delay, 3), movie, bitrate, speed)
    assert rng.random() == ref.random()  # the generator left in the same state
