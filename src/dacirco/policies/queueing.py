"""Queueing formulas for the policies that size a warm pool (adaptive): Erlang C, the
probability that a request waits in an M/M/c queue, and the smallest pool that keeps it below
a target. Pure arithmetic."""

from __future__ import annotations

import math
from functools import lru_cache


def erlang_c(c: int, load: float) -> float:
    """The probability that an arrival finds all ``c`` servers busy (and waits) in an M/M/c
    queue offered ``load`` Erlangs (arrival rate x mean service time): 1 when ``c <= load``
    (the queue grows without bound). By Erlang B's recursion, stable for any ``c``."""
    if load <= 0.0:
        return 0.0
    if c <= load:
        return 1.0
    b = 1.0  # Erlang B with 0 servers
    for n in range(1, c + 1):
        b = load * b / (n + load * b)
    return c * b / (c - load * (1.0 - b))


@lru_cache(maxsize=4096)
def _servers(load: float, p: float) -> float:
    c = max(1, math.floor(load) + 1)
    b = 1.0
    for n in range(1, c + 1):
        b = load * b / (n + load * b)
    # Erlang B for c servers, then one more server at a time until Erlang C is at most p.
    before, before_c = float(load), 1.0  # c = load: every arrival waits
    wait = c * b / (c - load * (1.0 - b))
    while wait > p:
        before, before_c = c, wait
        c += 1
        b = load * b / (c + load * b)
        wait = c * b / (c - load * (1.0 - b))
    # Between the last pool too small and the first large enough, in proportion.
    return before + (c - before) * (before_c - p) / (before_c - wait)


def servers_for(load: float, p: float) -> float:
    """The servers for which a request waits with probability ``p`` (Erlang C) at ``load``
    Erlangs: the fewest whole servers that keep it at most ``p``, less the share of the last
    one by which it is below ``p`` (linear between whole pools, from ``load`` servers, where
    every request waits), so that the pool grows smoothly with the load; 0 for no load.
    ``load`` is rounded to 1/1000 and ``p`` to 3 significant digits so that the answers can
    be cached."""
    if load <= 0.0:
        return 0.0
    p = min(max(p, 1e-6), 1.0)
    return _servers(round(load, 3), float(f"{p:.3g}"))
