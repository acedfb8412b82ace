"""What a policy sees (ClusterView), what it returns (Decisions), and the registry by name.

A policy is pure: the same view always gives the same decisions; it does no I/O and reads
no clock (``view.now`` is the time). The controller and the simulator call the same objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dacirco.domain import DEFAULT_FLAVOR, Flavor, WorkerState
from dacirco.policies.stats import RecentStats, _Later


@dataclass(frozen=True)
class JobView:
    id: str
    id_video: str
    bitrate: int
    speed: str
    received_at: float
    attempts: int = 0
    input_duration: float | None = None  # seconds
    input_size: int | None = None  # bytes
    # width x height x fps of the input; for a streaming job or one that measures its
    # quality, times the share of work that adds (Job.work_share): what its encoding costs
    input_pixel_rate: float | None = None
    part: str | None = None  # None: a whole job; "chunk" or "merge": a part of a split job
    parent_id: str | None = None  # the split job a part belongs to
    # A whole job that can be split: its frame count; a streaming job: the parts its
    # renditions are worth (outputs.parts.most_parts); else None. The most chunks it takes.
    frames: int | None = None
    priority: int = 0  # -50..50, higher first
    # The arrival time its priority stands for: received_at - priority x the core's aging
    # (None: received_at). The queue's order; a policy's own order ages jobs from it.
    rank: float | None = None

    @property
    def ranked_at(self) -> float:
        return self.received_at if self.rank is None else self.rank


@dataclass(frozen=True)
class WorkerView:
    id: str
    flavor: Flavor
    state: WorkerState
    created_at: float
    node: str | None = None
    idle_since: float | None = None
    job_id: str | None = None
    busy_since: float | None = None  # when its current job was assigned
    job_work: float | None = None  # its current job's work (policies.work), if known
    preemptible: bool = False  # a pilot on an opportunistic node: may be preempted any time
    part: str | None = None  # the part of a split job its task is ("chunk", "merge"), if one


def job_kind(j: JobView) -> tuple[str | None, float | None, float | None, str]:
    """What a job asks, as far as its predicted work goes (``ClusterView.waiting_groups``)."""
    return (j.part, j.input_duration, j.input_pixel_rate, j.speed)


def group_kinds(jobs: Sequence[JobView]) -> tuple[tuple[int, ...], ...]:
    """The positions of the jobs of each ``job_kind``, in the order of ``jobs``."""
    groups: dict[tuple[str | None, float | None, float | None, str], list[int]] = {}
    for i, j in enumerate(jobs):
        key = (j.part, j.input_duration, j.input_pixel_rate, j.speed)
        group = groups.get(key)
        if group is None:
            groups[key] = [i]
        else:
            group.append(i)
    return tuple(tuple(g) for g in groups.values())


def idle_age(w: WorkerView) -> tuple[float, str]:
    """The order of ``ClusterView.idle_by_age``."""
    return (w.idle_since or 0.0, w.id)


@dataclass(frozen=True)
class NodeView:
    name: str
    cpus: int
    memory_gb: float
    free_cpus: float
    free_memory_gb: float
    # Not ours (a node agent's idle machine): free, but preemptible when its owner's load
    # comes back (``policies/preemptible.py``: chunks and short jobs go there first).
    opportunistic: bool = False


@dataclass(frozen=True)
class Limits:
    max_workers: int = 2
    default_flavor: str = DEFAULT_FLAVOR
    can_split: bool = False  # the mechanism runs split jobs (chunks, then a merge)
    # Some node is opportunistic (a node agent's machine), as the core keeps it when the
    # nodes change; None (a view made by hand): not known, ``nodes`` tell.
    opportunistic: bool | None = None


@dataclass(frozen=True)
class ClusterView:
    """An immutable snapshot of the cluster at time ``now``.

    ``waiting`` is in queue order: arrival order (FIFO) within one priority, a higher priority
    first unless aged (``JobView.ranked_at``). ``workers`` holds every worker that is not stopped.
    ``stats``: what was observed lately (arrival rates, boot and task times).
    """

    now: float
    waiting: tuple[JobView, ...] = ()
    workers: tuple[WorkerView, ...] = ()
    nodes: tuple[NodeView, ...] = ()
    limits: Limits = field(default_factory=Limits)
    stats: RecentStats = field(default_factory=RecentStats)

    if TYPE_CHECKING:  # at run time ``_WaitingCount`` (below), or the core's value

        @property
        def waiting_count(self) -> int:
            """``len(waiting)``, without making ``waiting``."""
            return len(self.waiting)

    def in_state(self, state: WorkerState) -> tuple[WorkerView, ...]:
        # Once per view and state (views are immutable); the simulator asks on every event.
        got = self._by_state.get(state)
        if got is None:
            got = self._by_state[state] = tuple([w for w in self.workers if w.state is state])
        return got

    @property
    def idle(self) -> tuple[WorkerView, ...]:
        return self.in_state(WorkerState.IDLE)

    @property
    def idle_by_age(self) -> tuple[WorkerView, ...]:
        """The idle workers, longest idle first: by ``idle_since`` (unknown counted as 0),
        then by id. Once per view (the core's views come with it)."""
        cache = self.__dict__
        got = cache.get("_idle_by_age")
        if got is None:
            fill = cache.pop("_fill", None)
            if fill is not None:  # a core's view: made with its workers
                fill(self)
                return cache["_idle_by_age"]  # type: ignore[no-any-return]
            got = cache["_idle_by_age"] = tuple(sorted(self.idle, key=idle_age))
        return got

    def oldest_idle(self, count: int) -> tuple[WorkerView, ...]:
        """The first ``count`` of ``idle_by_age`` (a core's view gives them without making
        the whole tuple: a policy that looks at the longest idle only costs no pass over the
        others)."""
        cache = self.__dict__
        got = cache.get("_idle_by_age")
        if got is None:
            live = cache.get("_idle_live")  # the core's list, as it was when the view was made
            if live is not None:
                return tuple(live[:count])
            got = self.idle_by_age
        return got[:count]

    def first_waiting(self, count: int) -> tuple[JobView, ...]:
        """``waiting[:count]`` (a core's view gives them without making ``waiting``: a
        policy that assigns the first jobs costs no pass over the queue)."""
        cache = self.__dict__
        if "waiting" not in cache and "_waiting_list" in cache:
            return _core_waiting(cache, min(count, cache["waiting_count"]))
        return self.waiting[:count]

    def count(self, state: WorkerState) -> int:
        """``len(view.in_state(state))`` (a core's view says it without making the tuple)."""
        counts = self.__dict__.get("_counts")
        return len(self.in_state(state)) if counts is None else counts.get(state, 0)  # type: ignore[no-any-return]

    @property
    def idle_count(self) -> int:
        """``len(view.idle)``, as ``count``."""
        return self.count(WorkerState.IDLE)

    @property
    def idle_since_known(self) -> bool:
        """Every idle worker says since when it is idle (always so in the core's views)."""
        got = self.__dict__.get("_idle_since_known")
        if got is None:
            got = self.__dict__["_idle_since_known"] = all(
                w.idle_since is not None for w in self.idle
            )
        return got

    @property
    def booting(self) -> tuple[WorkerView, ...]:
        return self.in_state(WorkerState.BOOTING)

    @property
    def busy(self) -> tuple[WorkerView, ...]:
        return self.in_state(WorkerState.BUSY)

    @property
    def waiting_groups(self) -> tuple[tuple[int, ...], ...] | None:
        """The positions in ``waiting`` of the jobs of each kind (``job_kind``: the same part,
        movie length, pixel rate and preset, so the same predicted work), each group in queue
        order; None when ``waiting`` is not in queue order (``ranked_at`` decreasing
        somewhere, as a hand-made view may have it). Once per view (the core's views come
        with it): a policy that orders jobs by work and age merges the groups instead of
        sorting every waiting job."""
        cache = self.__dict__
        if "_waiting_groups" in cache:
            return cache["_waiting_groups"]
        made = cache.get("_waiting_groups_of")  # the core's, made when first asked
        if made is not None:
            cache["_waiting_groups"] = made()
        else:
            waiting = self.waiting
            ordered = all(a.ranked_at <= b.ranked_at for a, b in pairwise(waiting))
            cache["_waiting_groups"] = group_kinds(waiting) if ordered else None
        return cache["_waiting_groups"]

    @property
    def room(self) -> int:
        """How many more workers may be started under ``max_workers``."""
        count = self.__dict__.get("_worker_count")  # the core's views say it
        return max(0, self.limits.max_workers - (len(self.workers) if count is None else count))


def _core_waiting(cache: dict[str, object], count: int) -> tuple[JobView, ...]:
    """The first ``count`` waiting jobs of a core's view (its dict): from the core's queue
    list, which only grows at its end."""
    queue, start = cache["_waiting_list"], cache["_waiting_start"]
    return tuple(queue[start : start + count])  # type: ignore[index,operator]


class _Waiting:
    """``ClusterView.waiting`` of a core's view, made when first read from the core's queue
    list, which only grows at its end: ``waiting_count`` jobs from ``_waiting_start``. A
    non-data descriptor, like ``_Later``: a view made by the constructor has its tuple in its
    dict."""

    def __get__(self, view: object, owner: type | None = None) -> object:
        if view is None:
            return self
        cache = view.__dict__
        if "_waiting_list" not in cache:
            raise AttributeError("waiting")
        got = cache["waiting"] = _core_waiting(cache, cache["waiting_count"])
        del cache["_waiting_list"]  # (the list: not held longer than needed)
        return got


class _WaitingCount:
    """``ClusterView.waiting_count``: ``len(waiting)`` without making ``waiting`` (a core's
    view has it in its dict: a policy that only counts the queue costs no pass over it)."""

    def __get__(self, view: object, owner: type | None = None) -> object:
        if view is None:
            return self
        got = view.__dict__["waiting_count"] = len(view.waiting)  # type: ignore[attr-defined]
        return got


ClusterView.waiting = _Waiting()  # type: ignore[assignment,misc]
ClusterView.waiting_count = _WaitingCount()  # type: ignore[assignment,misc]
ClusterView.workers = _Later("workers")  # type: ignore[assignment,misc]
ClusterView.stats = _Later("stats")  # type: ignore[assignment,misc]
ClusterView._by_state = _Later("_by_state", dict)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StartWorker:
    flavor: str
    node: str | None = None  # None: the runtime places it


@dataclass(frozen=True)
class StopWorker:
    worker_id: str
    reason: str = ""


@dataclass(frozen=True)
class Assign:
    job_id: str
    worker_id: str


@dataclass(frozen=True)
class Split:
    """Encode the waiting job ``job_id`` as ``chunks`` parts on any workers, then merge them:
    the parts appear in ``waiting`` (``part`` "chunk", then one "merge") and are assigned like
    jobs. Only when ``view.limits.can_split``."""

    job_id: str
    chunks: int


@dataclass(frozen=True)
class Decisions:
    """What to do now. ``wake_at``: when the policy would decide differently with nothing else
    happening (time alone: an idle worker's grace ending); ``math.inf`` if never, None if the
    policy does not say (then it is asked at every tick). Callers may skip the ticks before
    it; the controller ticks anyway, the simulator uses it to jump over quiet time."""

    start: tuple[StartWorker, ...] = ()
    stop: tuple[StopWorker, ...] = ()
    assign: tuple[Assign, ...] = ()
    wake_at: float | None = None
    split: tuple[Split, ...] = ()  # applied before the assignments

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.assign or self.split)


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, view: ClusterView) -> Decisions: ...


# The policy the service runs when none is named (docs/policies.md, "adaptive against its
# targets", has the measurements that made it the default; ``dacirco simulate`` keeps the
# classic grace-period as its own).
DEFAULT_POLICY = "adaptive"


@dataclass(frozen=True)
class PolicyParams:
    """Every knob a policy may read; each policy takes the ones it needs."""

    max_idle_time: float = 60.0
    flavor: str = DEFAULT_FLAVOR
    # The policy's own knobs set away from their defaults (``policies/knobs.py``).
    knobs: tuple[tuple[str, float], ...] = ()


_REGISTRY: dict[str, Callable[[PolicyParams], Policy]] = {}


def register(name: str) -> Callable[[Callable[[PolicyParams], Policy]], Callable[..., Policy]]:
    """Class decorator: make a policy available by ``name`` (``--algorithm name``)."""

    def wrap(factory: Callable[[PolicyParams], Policy]) -> Callable[[PolicyParams], Policy]:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_policy(name: str, params: PolicyParams | None = None) -> Policy:
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}"
        ) from None
    params = params or PolicyParams()
    policy = factory(params)
    if params.knobs:
        from dacirco.policies import knobs

        policy = knobs.apply(policy, params.knobs, name)
    return policy


@cache
def _load_builtin() -> None:
    """Import every module of the package: a policy registers itself when its module is
    imported, so a new policy is one new file."""
    import importlib
    import pkgutil

    import dacirco.policies as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
