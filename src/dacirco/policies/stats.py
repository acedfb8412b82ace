"""What the mechanism observed lately (arrivals, boots, task times), for policies to read.

``StatsTracker`` is fed by whoever runs the policies (the controller, the simulator) with the
times of its own clock, and gives an immutable ``RecentStats`` for each view. It is plain
arithmetic, no I/O and no clock of its own, so the controller and the simulator observe
the same way.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, TypeVar

from dacirco.policies.season import BIN, REFIT_BINS, Arrivals, Season, fit

T = TypeVar("T")


def maker(
    cls: type[T], later: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> Callable[..., T]:
    """A constructor of the frozen dataclass ``cls`` from every one of its fields, in order:
    the same object as ``cls(...)``, made without the ``object.__setattr__`` of each field of
    a frozen dataclass's ``__init__`` (the core builds views on every event). Written out
    for ``cls``'s fields, as ``dataclasses`` writes ``__init__``: its instance dict in one
    literal. ``later``: fields left out (set by the caller, or made when first read);
    ``extra``: more entries of the instance dict (caches), after the fields."""
    names = tuple(f.name for f in fields(cls) if f.name not in later)  # type: ignore[arg-type]
    names += extra
    body = ", ".join(f"{name!r}: {name}" for name in names)
    source = (
        f"def make({', '.join(names)}):\n"
        "    obj = _new(_cls)\n"
        f"    obj.__dict__.update({{{body}}})\n"
        "    return obj\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    exec(source, namespace)  # made from the dataclass's own field names
    make: Callable[..., T] = namespace["make"]
    return make


class _Later:
    """A field of ``ClusterView`` (or a cache of it), or of ``RecentStats``, made when it is
    first read: such an object has no value of it in its dict but a ``_fill`` that sets them
    (the core makes the view's ``workers``, by state and by idle age, and ``stats`` for the
    policies that read them, and for the others only if the view outlives the state they
    are made from; the tracker looks for the statistics' ``season`` only for the policies
    that read it). A non-data descriptor: a value in the object's dict (any made by the
    constructor) is read without it. ``missing``: what one made otherwise starts with."""

    def __init__(self, name: str, missing: Callable[[], object] | None = None) -> None:
        self.name, self.missing = name, missing

    def __get__(self, view: object, owner: type | None = None) -> object:
        if view is None:
            return self
        cache = view.__dict__
        fill = cache.pop("_fill", None)
        if fill is not None:
            fill(view)
        elif self.name not in cache and self.missing is not None:
            cache[self.name] = self.missing()
        try:
            return cache[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


SHORT_WINDOW = 60.0  # seconds: reacts to a burst
LONG_WINDOW = 600.0  # seconds: the steady rate
KEEP = 50  # boots and tasks remembered
WORKS = 200  # requests whose work is remembered


@dataclass(frozen=True)
class RecentStats:
    """Observations up to the view's time. Rates are requests per second."""

    rate_short: float = 0.0  # over the last SHORT_WINDOW seconds (or since the first arrival)
    rate_long: float = 0.0  # over the last LONG_WINDOW seconds
    arrivals: int = 0  # requests received so far
    last_arrival: float | None = None
    boot_seconds: float | None = None  # mean of the recent boots (created -> registered)
    # flavor -> mean seconds a worker of it took per unit of work (policies.work), from
    # assignment to uploaded output
    seconds_per_work: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    mean_input_seconds: float | None = None  # of the recent requests
    recent_work: tuple[float, ...] = ()  # the last WORKS requests' work, sorted
    season: Season | None = None  # the arrivals' period and its forecasts (policies.season)


# The tracker's statistics look for the season when a policy first reads it (``_fill``).
RecentStats.season = _Later("season")  # type: ignore[assignment]
_make_stats = maker(RecentStats, later=("season",), extra=("_fill",))


class StatsTracker:
    def __init__(self) -> None:
        self._arrivals: list[float] = []  # in time order; [self._head:] are in the window
        self._head = 0
        self._inputs: deque[float] = deque(maxlen=KEEP)
        self._works: deque[float] = deque(maxlen=WORKS)
        self._works_sorted: tuple[float, ...] | None = ()
        self._works_order: list[float] = []  # the same works, kept sorted
        self._count = 0
        self._first: float | None = None
        self._boots: deque[float] = deque(maxlen=KEEP)
        self._tasks: dict[str, deque[float]] = {}
        self._cache: tuple[float, RecentStats] | None = None
        self._bins = Arrivals()
        self._season: tuple[int | None, Season | None] = (None, None)  # (its key, it)
        # The means, each made again only when what it averages changed.
        self._boot_mean: float | None = None
        self._input_mean: float | None = None
        self._per_work: Mapping[str, float] | None = None
        # Called before an observation changes what ``snapshot`` gives (the core makes a
        # view's statistics only when a policy reads them, or before they would change).
        self.before_change: Callable[[], None] | None = None

    def arrival(self, at: float, input_seconds: float | None = None, work: float = 0.0) -> None:
        """A request received at ``at``: its movie's length and its work (policies.work)."""
        if self.before_change is not None:
            self.before_change()
        order = self._works_order
        if len(self._works) == WORKS:  # the oldest leaves the window
            del order[bisect_left(order, self._works[0])]
        self._works.append(work)
        insort(order, work)
        self._works_sorted = None
        self._arrivals.append(at)
        self._bins.add(at)
        self._count += 1
        self._first = at if self._first is None else self._first
        if input_seconds:
            self._inputs.append(input_seconds)
            self._input_mean = None
        self._cache = None

    def booted(self, seconds: float) -> None:
        if self.before_change is not None:
            self.before_change()
        self._boots.append(max(0.0, seconds))
        self._boot_mean = None
        self._cache = None

    def task_done(self, flavor: str, work: float, seconds: float) -> None:
        """A task that completed: ``seconds`` from assignment to uploaded output for ``work``
        units of work (``policies.work.work_units``; 0 when unknown: not counted)."""
        if work > 0:
            if self.before_change is not None:
                self.before_change()
            self._tasks.setdefault(flavor, deque(maxlen=KEEP)).append(seconds / work)
            self._per_work = None
            self._cache = None

    def snapshot(self, now: float) -> RecentStats:
        if self._cache is not None and self._cache[0] == now:
            return self._cache[1]
        self._head = bisect_left(self._arrivals, now - LONG_WINDOW, lo=self._head)
        if self._head > 4096 and self._head > len(self._arrivals) // 2:
            del self._arrivals[: self._head]
            self._head = 0
        in_long = len(self._arrivals) - self._head
        in_short = len(self._arrivals) - bisect_left(
            self._arrivals, now - SHORT_WINDOW, lo=self._head
        )
        elapsed = now - self._first if self._first is not None else 0.0
        stats = _make_stats(
            in_short / max(1.0, min(SHORT_WINDOW, elapsed)),
            in_long / max(1.0, min(LONG_WINDOW, elapsed)),
            self._count,
            self._arrivals[-1] if self._arrivals else None,
            self._boot_seconds(),
            self._seconds_per_work(),
            self._mean_input(),
            self._recent_work(),
            lambda stats: stats.__dict__.__setitem__("season", self._fit(now)),
        )
        self._cache = (now, stats)
        return stats

    def _fit(self, now: float) -> Season | None:
        """The season of the arrivals, looked for again once ``REFIT_BINS`` more bins ended
        (counted from the epoch: the same key is never met again after a trim)."""
        if self._bins.start is None:
            return None
        end = (round(self._bins.start / BIN) + self._bins.closed(now)) // REFIT_BINS
        if end != self._season[0]:
            self._season = (end, fit(self._bins, now, SHORT_WINDOW, LONG_WINDOW))
        return self._season[1]

    def _boot_seconds(self) -> float | None:
        if self._boot_mean is None and self._boots:
            self._boot_mean = sum(self._boots) / len(self._boots)
        return self._boot_mean

    def _mean_input(self) -> float | None:
        if self._input_mean is None and self._inputs:
            self._input_mean = sum(self._inputs) / len(self._inputs)
        return self._input_mean

    def _seconds_per_work(self) -> Mapping[str, float]:
        if self._per_work is None:
            self._per_work = MappingProxyType(
                {f: sum(d) / len(d) for f, d in self._tasks.items() if d}
            )
        return self._per_work

    def _recent_work(self) -> tuple[float, ...]:
        if self._works_sorted is None:  # sorted again only when a request came
            self._works_sorted = tuple(self._works_order)
        return self._works_sorted
