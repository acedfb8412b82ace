"""Student's t distribution, for the tests a policy makes on a few observations: its upper
tail for integer degrees of freedom, in closed form (Abramowitz and Stegun 26.7.3 and
26.7.4), and the quantile of a tail probability, by bisection. Pure arithmetic, no library:
the policies read it at most once a minute, and only numpy is a dependency of theirs."""

from __future__ import annotations

import math
from functools import lru_cache


def upper_tail(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` (>= 1) degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    term = total = 1.0
    if df % 2:  # odd: (2/pi)(theta + sin cos (1 + 2/3 cos^2 + 2.4/3.5 cos^4 + ...))
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c * c
            total += term
        inside = 2 / math.pi * (theta + (s * c * total if df > 1 else 0.0))
    else:  # even: sin (1 + 1/2 cos^2 + 1.3/2.4 cos^4 + ...)
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c * c
            total += term
        inside = s * total
    return (1.0 - inside) / 2.0


@lru_cache(maxsize=256)
def quantile(tail: float, df: int) -> float:
    """The t with ``upper_tail(t, df) == tail`` (0 < tail < 0.5), to 1e-9."""
    if not 0.0 < tail < 0.5:
        raise ValueError(f"the tail probability must be in (0, 0.5), not {tail}")
    lo, hi = 0.0, 1.0
    while upper_tail(hi, df) > tail:
        hi *= 2.0
    while hi - lo > 1e-9 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        if upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    return hi
