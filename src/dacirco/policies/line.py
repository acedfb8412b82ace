"""List scheduling with minimum completion time, a job at a time: each job goes to the server
where it would complete first, the first in place of those that complete at the same time
(``provision.completions``, what ``cvss`` predicts with).

Each flavor's servers are kept by when they come free: a heap of the distinct times, and the
servers free at each time in a heap by place. A job then costs a look at each flavor's first
time, not at every server. Servers free at times too close to tell apart once a job's
seconds are added complete at the same rounded time: those are looked up too, so the choice
is the one a scan of every server would make. A copy shares the per-time heaps until one
changes (a round of ``cvss``'s provisioner schedules a few jobs on a copy of many servers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from heapq import heapify, heappop, heappush


class _Servers:
    """The servers of one flavor: ``times``, a heap of the distinct times they come free;
    ``at[t]``, the places of those free at ``t``, a heap; ``own``: the heaps not shared."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.at: dict[float, list[int]] = {}
        self.own: set[float] = set()

    def copy(self) -> _Servers:
        other = _Servers()
        other.times = list(self.times)
        other.at = dict(self.at)
        self.own = set()  # the heaps are shared from now on
        return other

    def places(self, t: float) -> list[int]:
        """The heap of places at ``t``, this copy's own."""
        if t not in self.own:
            self.at[t] = list(self.at[t])
            self.own.add(t)
        return self.at[t]

    def add(self, t: float, place: int) -> None:
        if t in self.at:
            heappush(self.places(t), place)
        else:
            self.at[t] = [place]
            self.own.add(t)
            heappush(self.times, t)

    def remove_first(self, t: float) -> None:
        """The first server free at ``t`` is taken."""
        places = self.places(t)
        heappop(places)
        if places:
            return
        del self.at[t]
        self.own.discard(t)
        times = self.times
        if times[0] == t:
            heappop(times)
        else:  # a time further in the heap (completions rounded alike: rare)
            times.remove(t)
            heapify(times)

    def first(self, cost: float) -> tuple[float, int, float]:
        """(completion, place, free time) of the server that would complete a job of
        ``cost`` seconds first, the first in place of equals."""
        times = self.times
        t = times[0]
        done = t + cost
        best = (done, self.at[t][0], t)
        if len(times) > 1 and min(times[1:3]) + cost == done:
            # Later times that round to the same completion: the heap's nodes from the root
            # down, while they do (a node's children come free no sooner).
            stack = [1, 2]
            while stack:
                k = stack.pop()
                if k < len(times) and times[k] + cost == done:
                    u = times[k]
                    best = min(best, (done, self.at[u][0], u))
                    stack += (2 * k + 1, 2 * k + 2)
        return best


class Line:
    """Servers (each with when it comes free, seconds from ``now``, and its flavor) that jobs
    are given to in turn; ``spw``: each flavor's seconds per unit of work."""

    def __init__(
        self, now: float, spw: Mapping[str, float], pool: Iterable[tuple[float, str]] = ()
    ) -> None:
        self.now = now
        self.spw = spw
        self.flavors: dict[str, _Servers] = {}
        size = 0
        for at, flavor in pool:
            servers = self.flavors.get(flavor)
            if servers is None:
                servers = self.flavors[flavor] = _Servers()
            places = servers.at.get(at)
            if places is None:
                servers.at[at] = [size]  # places come in order: each list is a heap
            else:
                places.append(size)
            size += 1
        for servers in self.flavors.values():
            servers.times = list(servers.at)
            heapify(servers.times)
            servers.own = set(servers.at)
        self.size = size

    def copy(self) -> Line:
        other = Line(self.now, self.spw)
        other.flavors = {f: s.copy() for f, s in self.flavors.items()}
        other.size = self.size
        return other

    def earliest(self, flavor: str) -> float | None:
        """When the first server of ``flavor`` comes free (None: there is none)."""
        servers = self.flavors.get(flavor)
        return servers.times[0] if servers and servers.times else None

    def add(self, at: float, flavor: str) -> None:
        """One more server, after those already there."""
        servers = self.flavors.get(flavor)
        if servers is None:
            servers = self.flavors[flavor] = _Servers()
        servers.add(at, self.size)
        self.size += 1

    def first(self, work: float) -> tuple[float, int, float, _Servers | None]:
        """Where a job of ``work`` would go, without placing it: (completion, place, free
        time, the flavor's servers); completion inf with no server."""
        best: tuple[float, int, float] | None = None
        chosen: _Servers | None = None
        for flavor, servers in self.flavors.items():
            if servers.times:
                got = servers.first(work * self.spw[flavor])
                if best is None or got[:2] < best[:2]:
                    best, chosen = got, servers
        if best is None:
            return (math.inf, -1, math.inf, None)
        return (*best, chosen)

    def place(self, work: float) -> tuple[float, float]:
        """A job of ``work``: its start and completion (absolute; inf with no server)."""
        done, place, t, chosen = self.first(work)
        if chosen is None:
            return (math.inf, math.inf)
        chosen.remove_first(t)
        chosen.add(done, place)
        return (self.now + t, self.now + done)
