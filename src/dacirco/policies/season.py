"""The traffic's season: a period found in the recent arrivals, and the rates it forecasts.

Requests often come back in a rhythm: a day's rise and fall, a batch that lands every few
minutes. A policy that sizes its pool from the rate it has just seen is late at every rise
(it boots when the requests are already there) and wasteful at every fall (it keeps the
pool of a rate that is over). ``Arrivals`` counts the requests in bins of ``BIN`` seconds;
``fit`` looks for a period in those counts and keeps it only when it predicts them better
than the recent rate does:

- **the periods tried** are the ``CANDIDATES`` shortest peaks of the counts'
  autocorrelation (found by FFT) at least half as high as the highest, at lags up to half
  the history (at least two whole periods seen) and past the first lags where it has not
  yet fallen below half (a slow swing keeps neighbouring bins alike: no period);
- **the test**: the requests of every stretch of ``AHEAD_BINS`` bins are forecast twice,
  by their mean in up to ``PERIODS`` periods before, and from the rate of the seconds just
  before the stretch (over the short or the long window a policy without a season reads,
  or over as many bins as the period's forecast averages: whichever forecasts better). A
  period is kept only if its forecasts' absolute errors are lower, by a one-sided
  Student's t test over the stretches (their differences' mean over its standard error,
  at n - 1 degrees of freedom, beyond the tail a normal leaves past ``SIGNIFICANCE``
  standard deviations: a few stretches need a larger gain than many); the shortest that
  is wins (a period's multiples are periods too, averaged over fewer of them). On
  traffic without a rhythm (Poisson at a steady or slowly drifting rate) no period
  passes: a few periods' stretches are a noisier forecast than a window of many.

``Season.rate(t1, t2)`` then forecasts the request rate between two times to come, from the
same stretch of each of the last periods. Pure arithmetic on what was observed: the
controller and the simulator feed the same counts and get the same season.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dacirco.policies import student_t

BIN = 10.0  # seconds counted together
HISTORY_BINS = int(3 * 86_400 / BIN)  # three days: a daily rhythm is seen twice
MIN_PERIOD_BINS = 3  # the shortest period looked for (30 s)
PERIODS = 4  # periods averaged in a forecast
AHEAD_BINS = 3  # the test forecasts the requests of this many bins to come (about a boot)
CANDIDATES = 5  # autocorrelation peaks tested as the period, the shortest first
# Stretches forecast, at least. The t test's threshold already grows as they get fewer (4.53
# at eight, 6.62 at five), but it assumes normal errors, and a burst in one stretch skews
# them: a floor keeps that risk small (benchmarks/season_chance.py: 1 false season in
# 32,403 fits of Poisson traffic, found with ten stretches, with this floor or one of 4).
MIN_TESTS = 8
SIGNIFICANCE = 3.0  # its tail is the test's level (several periods are tried: more than 2)
LEVEL = 0.5 * math.erfc(SIGNIFICANCE / math.sqrt(2))  # 0.135 %, one-sided
REFIT_BINS = 6  # the season is looked for again after this many new bins (a minute)


class Arrivals:
    """Requests counted in bins of ``BIN`` seconds, the last ``HISTORY_BINS`` of them (up to
    twice as many between trims); the bins after the last arrival hold none."""

    def __init__(self) -> None:
        self.start: float | None = None  # the time of ``counts[0]``'s start
        self.counts: list[int] = []

    def add(self, at: float) -> None:
        if not math.isfinite(at):
            return
        if self.start is None:
            self.start = math.floor(at / BIN) * BIN
        i = max(0, int((at - self.start) // BIN))  # before the first bin: counted in it
        if i >= 2 * HISTORY_BINS:  # the oldest leave (all of them after a long silence)
            drop = i + 1 - HISTORY_BINS
            del self.counts[:drop]
            self.start += drop * BIN
            i -= drop
        counts = self.counts
        if i >= len(counts):
            counts.extend([0] * (i + 1 - len(counts)))
        counts[i] += 1

    def closed(self, now: float) -> int:
        """How many bins have ended by ``now``, silent ones after the last arrival included."""
        if self.start is None:
            return 0
        return max(0, int((now - self.start) // BIN))

    def ended(self, end: int) -> tuple[float, list[int]]:
        """The start and the counts of the last ``HISTORY_BINS`` of the first ``end`` bins."""
        assert self.start is not None
        lo = max(0, end - HISTORY_BINS)
        counts = self.counts[lo:end]
        return self.start + lo * BIN, counts + [0] * (end - lo - len(counts))


@dataclass(frozen=True)
class Season:
    """A period of the arrivals and the counts it forecasts from."""

    period: float  # seconds
    start: float  # the time of counts[0]'s start
    counts: tuple[int, ...]  # the bins that had ended when it was found
    error: float  # mean absolute error of its forecasts of AHEAD_BINS bins (requests)
    error_flat: float  # the same, of the best flat forecast's

    @property
    def stretches(self) -> int:
        """The stretches of ``AHEAD_BINS`` bins its test forecast (those after one period)."""
        return len(_starts(round(self.period / BIN), len(self.counts)))

    def rate(self, t1: float, t2: float) -> float | None:
        """The requests per second forecast between ``t1`` and ``t2`` (times to come): the
        mean rate of the same stretch in each of the last ``PERIODS`` periods seen; None
        when no period back holds it whole (a period shorter than how far ahead is asked)."""
        lag = round(self.period / BIN)
        b1 = math.floor((t1 - self.start) / BIN)
        b2 = max(b1 + 1, math.ceil((t2 - self.start) / BIN))
        n, rates = len(self.counts), []
        for k in range(1, PERIODS + 1):
            lo, hi = b1 - k * lag, b2 - k * lag
            if lo < 0:
                break
            if hi > n:  # not all seen yet: the next period back
                continue
            rates.append(sum(self.counts[lo:hi]) / ((hi - lo) * BIN))
        return sum(rates) / len(rates) if rates else None


def _starts(lag: int, n: int) -> range:
    """The first bins of the stretches a period of ``lag`` bins is tested on, in ``n`` bins."""
    return range(lag, n - AHEAD_BINS + 1, AHEAD_BINS)


def fit(arrivals: Arrivals, now: float, short_window: float, long_window: float) -> Season | None:
    """The season of the bins ended by ``now`` (rounded down to ``REFIT_BINS``, the last
    ``HISTORY_BINS`` of them), or None when no period forecasts them significantly better
    than a flat rate: the last ``short_window`` or ``long_window`` seconds', or that of as
    many bins as the period's forecast averages."""
    import numpy as np  # only where a policy reads the season: the others start faster

    end = arrivals.closed(now) // REFIT_BINS * REFIT_BINS
    if end < 2 * MIN_PERIOD_BINS or arrivals.start is None:
        return None
    start, counts = arrivals.ended(end)
    n = len(counts)
    c = np.asarray(counts, dtype=float)
    x = c - c.mean()
    if not x.any():
        return None
    spectrum = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2 + 2]
    r = ac / (n - np.arange(len(ac)))  # the mean product at each lag: no bias to short ones
    # The candidate periods: the shortest peaks of the autocorrelation at least half the
    # highest, past the lags where it has not yet fallen below that (a slow swing keeps
    # neighbouring bins alike: its first lags are no period). A period's multiples peak as
    # high as it; the test below prefers the period, which averages more of them.
    mid = r[MIN_PERIOD_BINS : n // 2 + 1]  # r at the lags tried; r[lag ± 1] beside it
    top = float(mid.max(initial=0.0))
    low = np.flatnonzero(mid < top / 2)
    if top <= 0 or len(low) == 0:
        return None
    peaks = (
        (mid >= top / 2)
        & (mid >= r[MIN_PERIOD_BINS - 1 : n // 2])
        & (mid >= r[MIN_PERIOD_BINS + 1 : n // 2 + 2])
    )
    peaks[: low[0]] = False
    lags = [int(i) + MIN_PERIOD_BINS for i in np.flatnonzero(peaks)[:CANDIDATES]]
    cum = np.concatenate(([0.0], np.cumsum(c)))
    for lag in lags:
        tested = _starts(lag, n)
        starts = np.arange(tested.start, tested.stop, tested.step)
        if len(starts) < MIN_TESTS:
            continue
        actual = cum[starts + AHEAD_BINS] - cum[starts]
        total, seen = np.zeros(len(starts)), np.zeros(len(starts))
        for k in range(1, PERIODS + 1):
            back = starts - k * lag
            ok = back >= 0
            total[ok] += cum[back[ok] + AHEAD_BINS] - cum[back[ok]]
            seen[ok] += 1
        err = np.abs(actual - total / seen)
        flat = None
        for window in (short_window, long_window, PERIODS * lag * BIN):
            w = max(1, round(window / BIN))
            lo = np.maximum(starts - w, 0)
            e = np.abs(actual - (cum[starts] - cum[lo]) / (starts - lo) * AHEAD_BINS)
            flat = e if flat is None or e.mean() < flat.mean() else flat
        assert flat is not None
        d = flat - err
        spread = float(d.std(ddof=1))
        if spread > 0:
            t = float(d.mean()) / (spread / math.sqrt(len(d)))
        else:  # the same gain at every stretch: a rhythm without noise, or none
            t = math.inf if d.mean() > 0 else 0.0
        # The shortest that passes: its multiples are periods too.
        if t > student_t.quantile(LEVEL, len(d) - 1):
            return Season(lag * BIN, start, tuple(counts), float(err.mean()), float(flat.mean()))
    return None
