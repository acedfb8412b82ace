"""Scenario generators: pure functions of ``n`` and an injected ``random.Random``.

No global randomness and no clock: the same seed gives the same scenario. Every generator
draws the request itself the same way (the classic draws, SPEC §7): bitrate uniform integer
in [500, 8000] kbit/s, speed ``ultrafast``/``fast`` 50/50, movie ``bbb_i.mp4`` with weight
(i+1)/55 for i in 0..9. ``movies`` and ``weights`` override the catalog (other movies default
to uniform weights). They differ in the gaps between requests. The first request has delay 0;
delays are rounded to the millisecond.

- ``classic(n, rng, mean=6, sd=2, floor=0.1)``: the classic DaCirco load. Gaps are Gaussian
  (mean ``mean`` s, standard deviation ``sd`` s), never below ``floor`` s: a steady stream of
  about one request every ``mean`` seconds.
- ``poisson(n, rng, rate=0.2)``: a Poisson process of ``rate`` requests/s (independent users):
  exponential gaps of mean 1/``rate`` s.
- ``bursty(n, rng, on_rate=1, off_rate=0.05, on_seconds=30, off_seconds=120)``: a Poisson
  process whose rate switches between ``on_rate`` for ``on_seconds`` and ``off_rate`` for
  ``off_seconds`` (flash crowds between quiet spells); starts with an "on" period.
  ``off_rate`` may be 0 (silence between bursts).
- ``diurnal(n, rng, mean_rate=0.2, amplitude=0.8, period_seconds=600)``: a non-homogeneous
  Poisson process of rate ``mean_rate * (1 + amplitude * sin(2 pi t / period_seconds))``
  (a day's rise and fall, compressed to ``period_seconds``), drawn by thinning;
  ``amplitude`` in [0, 1].
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice, pairwise

from dacirco.domain import MAX_BITRATE_KBPS, MIN_BITRATE_KBPS
from dacirco.scenario.model import SPEEDS, Request

CLASSIC_MOVIES: tuple[str, ...] = tuple(f"bbb_{i}.mp4" for i in range(10))
CLASSIC_WEIGHTS: tuple[float, ...] = tuple((i + 1) / 55 for i in range(10))


def _weights_for(movies: Sequence[str], weights: Sequence[float] | None) -> Sequence[float] | None:
    if weights is None and tuple(movies) == CLASSIC_MOVIES:
        weights = CLASSIC_WEIGHTS
    if weights is not None and len(weights) != len(movies):
        raise ValueError(f"{len(movies)} movies but {len(weights)} weights")
    return weights


def draw_request(
    rng: random.Random,
    delay: float,
    movies: Sequence[str] = CLASSIC_MOVIES,
    weights: Sequence[float] | None = None,
) -> Request:
    """One request after ``delay`` s, with the shared movie/bitrate/speed draws.

    ``weights`` default to the classic popularity for the classic catalog, else uniform.
    """
    weights = _weights_for(movies, weights)
    movie = rng.choices(movies, weights=weights)[0]
    bitrate = rng.randint(MIN_BITRATE_KBPS, MAX_BITRATE_KBPS)
    speed = rng.choice(SPEEDS)
    return Request(delay=round(delay, 3), movie=movie, bitrate=bitrate, speed=speed)


def _from_gaps(
    n: int,
    rng: random.Random,
    gaps: Iterator[float],
    movies: Sequence[str],
    weights: Sequence[float] | None,
) -> list[Request]:
    """``n`` requests, the first with delay 0, the others after successive ``gaps``."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return []
    weights = _weights_for(movies, weights)
    # ``rng.choices(movies, cum_weights=cum)``, ``rng.randint(lo, hi)`` and
    # ``rng.choice(SPEEDS)`` written out: the same numbers from the same generator
    # (tests/unit/test_scenario_generate.py checks it), without their calls: a simulated
    # million requests are drawn here.
    random, getrandbits = rng.random, rng.getrandbits
    count = len(movies)
    cum = None if weights is None else list(accumulate(weights))
    total = float(count) if cum is None else cum[-1] + 0.0
    if not (total > 0.0 and math.isfinite(total)):
        raise ValueError("the movies' weights must sum to a finite number > 0")
    last = count - 1
    lo, width = MIN_BITRATE_KBPS, MAX_BITRATE_KBPS - MIN_BITRATE_KBPS + 1
    bits, speeds = width.bit_length(), len(SPEEDS)
    speed_bits = speeds.bit_length()
    requests = []
    append = requests.append
    for i in range(n):
        delay = 0.0 if i == 0 else next(gaps)
        if cum is None:
            movie = movies[math.floor(random() * total)]
        else:
            movie = movies[bisect(cum, random() * total, 0, last)]
        r = getrandbits(bits)
        while r >= width:
            r = getrandbits(bits)
        s = getrandbits(speed_bits)
        while s >= speeds:
            s = getrandbits(speed_bits)
        append(Request(round(delay, 3), movie, lo + r, SPEEDS[s]))
    return requests


def _from_times(
    n: int,
    rng: random.Random,
    times: Iterator[float],
    movies: Sequence[str],
    weights: Sequence[float] | None,
) -> list[Request]:
    """``n`` requests at the successive absolute ``times`` (shifted so the first is at 0)."""
    stamps = [round(t, 3) for t in islice(times, n)]
    gaps = iter([b - a for a, b in pairwise(stamps)])
    return _from_gaps(len(stamps), rng, gaps, movies, weights)


def classic(
    n: int,
    rng: random.Random,
    mean: float = 6.0,
    sd: float = 2.0,
    floor: float = 0.1,
    movies: Sequence[str] = CLASSIC_MOVIES,
    weights: Sequence[float] | None = None,
) -> list[Request]:
    """Gaussian gaps (``mean``, ``sd`` s) floored at ``floor`` s."""

    def gaps() -> Iterator[float]:
        while True:
            yield max(floor, rng.gauss(mean, sd))

    return _from_gaps(n, rng, gaps(), movies, weights)


def poisson(
    n: int,
    rng: random.Random,
    rate: float = 0.2,
    movies: Sequence[str] = CLASSIC_MOVIES,
    weights: Sequence[float] | None = None,
) -> list[Request]:
    """Exponential gaps of mean 1/``rate`` s."""
    if rate <= 0:
        raise ValueError("rate must be > 0")

    def gaps() -> Iterator[float]:
        while True:
            yield rng.expovariate(rate)

    return _from_gaps(n, rng, gaps(), movies, weights)


def bursty(
    n: int,
    rng: random.Random,
    on_rate: float = 1.0,
    off_rate: float = 0.05,
    on_seconds: float = 30.0,
    off_seconds: float = 120.0,
    movies: Sequence[str] = CLASSIC_MOVIES,
    weights: Sequence[float] | None = None,
) -> list[Request]:
    """Poisson arrivals at ``on_rate`` for ``on_seconds``, then ``off_rate`` for
    ``off_seconds``, and again."""
    if on_rate <= 0 or off_rate < 0 or on_seconds <= 0 or off_seconds < 0:
        raise ValueError("need on_rate > 0, off_rate >= 0, on_seconds > 0, off_seconds >= 0")

    def times() -> Iterator[float]:
        t, period_start, on = 0.0, 0.0, True
        while True:
            rate = on_rate if on else off_rate
            end = period_start + (on_seconds if on else off_seconds)
            gap = rng.expovariate(rate) if rate > 0 else math.inf
            if t + gap < end:
                t += gap
                yield t
            else:  # memoryless: restart the draw at the switch
                t, period_start, on = end, end, not on

    return _from_times(n, rng, times(), movies, weights)


def diurnal_rate(t: float, mean_rate: float, amplitude: float, period_seconds: float) -> float:
    """The diurnal generator's rate (requests/s) at time ``t``."""
    return mean_rate * (1 + amplitude * math.sin(2 * math.pi * t / period_seconds))


def diurnal(
    n: int,
    rng: random.Random,
    mean_rate: float = 0.2,
    amplitude: float = 0.8,
    period_seconds: float = 600.0,
    movies: Sequence[str] = CLASSIC_MOVIES,
    weights: Sequence[float] | None = None,
) -> list[Request]:
    """Non-homogeneous Poisson arrivals of rate ``mean_rate*(1+amplitude*sin(2πt/period))``,
    by thinning."""
    if mean_rate <= 0 or not 0 <= amplitude <= 1 or period_seconds <= 0:
        raise ValueError("need mean_rate > 0, 0 <= amplitude <= 1, period_seconds > 0")
    peak = mean_rate * (1 + amplitude)

    def times() -> Iterator[float]:
        t = 0.0
        while True:
            t += rng.expovariate(peak)
            if rng.random() * peak < diurnal_rate(t, mean_rate, amplitude, period_seconds):
                yield t

    return _from_times(n, rng, times(), movies, weights)


@dataclass(frozen=True)
class GeneratorInfo:
    """A generator, its parameters (keyword names) and a one-line description."""

    function: Callable[..., list[Request]]
    params: tuple[str, ...]
    doc: str


GENERATORS: dict[str, GeneratorInfo] = {
    "classic": GeneratorInfo(
        classic, ("mean", "sd", "floor"), "Gaussian gaps: mean 6 s, sd 2 s, floor 0.1 s"
    ),
    "poisson": GeneratorInfo(poisson, ("rate",), "exponential gaps: rate requests/s"),
    "bursty": GeneratorInfo(
        bursty,
        ("on_rate", "off_rate", "on_seconds", "off_seconds"),
        "Poisson rate on_rate for on_seconds, then off_rate for off_seconds, repeated",
    ),
    "diurnal": GeneratorInfo(
        diurnal,
        ("mean_rate", "amplitude", "period_seconds"),
        "Poisson rate mean_rate*(1+amplitude*sin(2πt/period_seconds)), by thinning",
    ),
}


def generate(name: str, n: int, rng: random.Random, **params: float) -> list[Request]:
    """Run the generator ``name`` with those of ``params`` it takes (the others are ignored)."""
    try:
        info = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; one of {', '.join(GENERATORS)}") from None
    kwargs = {k: v for k, v in params.items() if k in info.params and v is not None}
    return info.function(n, rng, **kwargs)
