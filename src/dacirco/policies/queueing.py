"""Queueing formulas for the policies that size a warm pool (adaptive): Erlang C, the
probability that a request waits in an M/M/c queue, and the smallest pool that keeps it, or the
mean wait it makes, below a target. Pure arithmetic."""

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
def _servers(load: float, target: float, boot: float | None) -> float:
    """The fewest servers, linear between whole pools, for which a request waits with
    probability at most ``target`` (``boot`` None), or waits at most ``target`` mean service
    times on average: with Erlang C's probability, the sooner of ``boot`` and the M/M/c
    queue's mean wait for a busy server, 1 / (c - load)."""

    def cost(c: int, wait: float) -> float:
        return wait if boot is None else wait * min(boot, 1.0 / (c - load))

    c = max(1, math.floor(load) + 1)
    b = 1.0
    for n in range(1, c + 1):
        b = load * b / (n + load * b)
    # Erlang B for c servers, then one more server at a time until the cost is at most target.
    # From c = load servers, where every request waits (a boot, at most).
    before, before_cost = float(load), 1.0 if boot is None else boot
    now = cost(c, c * b / (c - load * (1.0 - b)))
    while now > target:
        before, before_cost = c, now
        c += 1
        b = load * b / (c + load * b)
        now = cost(c, c * b / (c - load * (1.0 - b)))
    if math.isinf(before_cost):  # from load servers, where the wait has no bound: whole
        return float(c)
    # Between the last pool too small and the first large enough, in proportion.
    return before + (c - before) * (before_cost - target) / (before_cost - now)


def _digits(x: float) -> float:
    return float(f"{x:.3g}")


def servers_for(load: float, p: float) -> float:
    """The servers for which a request waits with probability ``p`` (Erlang C) at ``load``
    Erlangs: the fewest whole servers that keep it at most ``p``, less the share of the last
    one by which it is below ``p`` (linear between whole pools, from ``load`` servers, where
    every request waits), so that the pool grows smoothly with the load; 0 for no load.
    ``load`` is rounded to 1/1000 and ``p`` to 3 significant digits so that the answers can
    be cached."""
    if load <= 0.0:
        return 0.0
    return _servers(round(load, 3), _digits(min(max(p, 1e-6), 1.0)), None)


def servers_for_wait(load: float, wait: float, boot: float) -> float:
    """The servers for which a request's mean wait is ``wait`` mean service times at ``load``
    Erlangs, when one that finds every server busy (Erlang C's probability) waits the sooner
    of ``boot`` (a new server's start, in mean service times) and the M/M/c queue's mean
    wait for one of the busy servers, 1 / (c - load) (the sooner of the two means: an
    approximation). With a boot shorter than 1 / (c - load) this is
    ``servers_for(load, wait / boot)``; a large busy pool's waiting request waits a fraction
    of a service time, so it needs fewer spare servers than a probability of waiting asks.
    Linear between whole pools, from ``load`` servers; rounded and cached as
    ``servers_for``."""
    if load <= 0.0:
        return 0.0
    boot = _digits(max(boot, 1e-6))
    return _servers(round(load, 3), _digits(min(max(wait, 1e-6), boot)), boot)
