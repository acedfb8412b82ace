"""Erlang C and the pool it sizes (policies/queueing.py), against values computed by hand."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from dacirco.policies.queueing import erlang_c, servers_for, servers_for_wait


def erlang_c_by_the_formula(c: int, load: float) -> float:
    top = load**c / math.factorial(c) * c / (c - load)
    return top / (sum(load**n / math.factorial(n) for n in range(c)) + top)


def test_erlang_c_known_values() -> None:
    # M/M/1: an arrival waits with probability rho.
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    # Two servers offered one Erlang: (1/2 * 2) / (1 + 1 + 1) = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # Ten servers offered eight Erlangs: 0.409 (the textbook's tables).
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)
    for c, load in ((3, 2.5), (7, 4.2), (20, 15.0), (50, 44.0)):
        assert erlang_c(c, load) == pytest.approx(erlang_c_by_the_formula(c, load))


def test_erlang_c_edges() -> None:
    assert erlang_c(3, 0.0) == 0.0
    assert erlang_c(2, 2.0) == 1.0  # saturated: every arrival waits
    assert erlang_c(2, 3.0) == 1.0
    # Stable for large pools (no factorial overflow), and falling with more servers.
    waits = [erlang_c(c, 900.0) for c in range(901, 1000, 10)]
    assert all(0.0 <= w <= 1.0 for w in waits)
    assert waits == sorted(waits, reverse=True)


def test_servers_for_a_probability_of_waiting() -> None:
    assert servers_for(0.0, 0.1) == 0.0
    # Exactly met by a whole pool: that pool.
    assert servers_for(1.0, erlang_c(2, 1.0)) == pytest.approx(2.0, abs=1e-2)
    for load in (0.3, 1.0, 2.5, 8.0, 40.0, 400.0):
        for p in (0.05, 0.15, 0.5):
            c = servers_for(load, p)
            whole = math.ceil(c)
            assert c > load
            # The fewest whole servers that keep the wait at most p, less part of the last.
            assert erlang_c(whole, load) <= p + 1e-9
            assert whole - 1 <= load or erlang_c(whole - 1, load) > p
    # Smooth and growing with the load; a smaller probability needs more servers.
    pools = [servers_for(x / 10, 0.15) for x in range(1, 100)]
    assert pools == sorted(pools)
    assert max(b - a for a, b in pairwise(pools)) < 0.5
    assert servers_for(4.0, 0.05) > servers_for(4.0, 0.15) > servers_for(4.0, 0.5)


def test_more_spare_than_square_root_staffing_on_small_pools() -> None:
    """Halfin and Whitt's R + beta sqrt(R) (beta = 1.0 for P(wait) = 0.224) understaffs a
    small pool: Erlang C asks more there, about as much on a large one."""
    p = 0.2236
    small, large = 1.0, 400.0
    assert servers_for(small, p) - small > 1.3 * 1.0 * math.sqrt(small)
    assert servers_for(large, p) - large == pytest.approx(math.sqrt(large), rel=0.1)


def mean_wait(c: int, load: float, boot: float) -> float:
    """A request's mean wait (in mean service times) with c servers: Erlang C's probability
    of waiting, times the sooner of a boot and the M/M/c queue's mean wait 1 / (c - load)."""
    if c <= load:  # every request waits, a boot
        return boot
    return erlang_c(c, load) * min(boot, 1.0 / (c - load))


def test_servers_for_a_mean_wait() -> None:
    assert servers_for_wait(0.0, 0.25, 2.0) == 0.0
    for load in (0.3, 1.0, 2.5, 8.0, 40.0, 400.0):
        for wait, boot in ((0.05, 1.0), (0.25, 1.7), (0.25, 20.0), (0.5, 0.5)):
            c = servers_for_wait(load, wait, boot)
            whole = math.ceil(c)
            assert c > load or wait >= boot  # a wait as long as a boot: no spare needed
            # The fewest whole servers that keep the mean wait at most ``wait``.
            assert mean_wait(whole, load, boot) <= wait + 1e-9
            assert whole - 1 <= load or mean_wait(whole - 1, load, boot) > wait
            # Never more than a probability of waiting a whole boot asks, fewer on large
            # pools, where a waiting request gets one of many busy servers soon.
            assert c <= servers_for(load, wait / boot) + 1e-9
    assert servers_for_wait(400.0, 0.25, 1.7) < servers_for(400.0, 0.25 / 1.7) - 10
    # Where the queue's wait is longer than a boot (a small pool), the same as waiting a boot.
    assert servers_for_wait(0.3, 0.02, 0.5) == pytest.approx(servers_for(0.3, 0.04), abs=1e-6)
    # Smooth and growing with the load.
    pools = [servers_for_wait(x / 10, 0.25, 1.7) for x in range(1, 100)]
    assert pools == sorted(pools)
    assert max(b - a for a, b in pairwise(pools)) < 0.5


def test_a_mean_wait_without_boots() -> None:
    """No boot to wait for (an infinite one): the queue's own wait alone, finite pools."""
    for load in (0.01, 0.5, 3.0):
        c = servers_for_wait(load, 0.25, math.inf)
        assert math.isfinite(c) and c > load
        assert mean_wait(math.ceil(c), load, math.inf) <= 0.25 + 1e-9
