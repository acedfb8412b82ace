"""What the core owns: jobs, workers, tasks, the waiting queue, the parts of split jobs, node
capacity and a few counters; and the policy's view of it, rebuilt only for what changed.

Every change goes through the step's transaction (``self.tx``: ``Txn`` in the controller,
``Direct`` in the simulator) so that it is persisted and can be undone.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from dacirco.domain import (
    DEFAULT_FLAVOR,
    Job,
    Node,
    ReuseKey,
    Task,
    Worker,
    WorkerState,
    reuse_key,
)
from dacirco.policies.base import (
    ClusterView,
    JobView,
    Limits,
    NodeView,
    WorkerView,
    idle_age,
)
from dacirco.policies.stats import StatsTracker, maker
from dacirco.policies.work import work_units

from .txn import Direct

_RANK = attrgetter("ranked_at")
_make_view = maker(ClusterView)
_make_job = maker(JobView)
_make_worker = maker(WorkerView)
_ALIVE = (WorkerState.BOOTING, WorkerState.IDLE, WorkerState.BUSY)


@dataclass(frozen=True)
class CoreConfig:
    """The limits and timeouts of the lifecycle (the controller's and the simulator's)."""

    max_workers: int = 2
    flavor: str = DEFAULT_FLAVOR
    can_split: bool = True  # policies may split jobs in chunks (Limits.can_split)
    boot_timeout: float = 120.0  # seconds a new worker has to register
    heartbeat_timeout: float = 90.0  # seconds a worker may stay silent
    max_boot_failures: int = 5  # in a row, before the waiting jobs are failed
    boot_backoff_max: float = 60.0
    capacity_backoff: float = 10.0  # seconds before a new start after the cloud had no room
    priority_aging: float = 60.0  # seconds of waiting worth one priority level
    reuse: bool = True  # identical requests share one output (``core/reuse.py``)
    retention: bool = False  # keep when jobs and workers ended, for ``Expire`` (retention.py)


@dataclass
class Counters:
    workers: int = 0  # workers started so far (their names: dacirco-worker-NNN)
    boot_failures: int = 0  # workers lost before registering, in a row
    start_blocked_until: float = 0.0  # no start before (boot or capacity backoff)


class PartRef(NamedTuple):
    """A waiting part of a split job: a chunk (index 1..chunks) or its merge (index 0)."""

    job_id: str
    kind: str
    index: int


def part_id(job_id: str, kind: str, index: int) -> str:
    return f"{job_id}#merge" if kind == "merge" else f"{job_id}#{index}"


def job_work(job: Job) -> float:
    return work_units(job.input_duration, job.input_pixel_rate, job.speed._value_)


def task_work(job: Job, task: Task) -> float:
    """The encoding work of one task: a chunk's share of its job's, none for a merge."""
    if task.part == "merge":
        return 0.0
    work = job_work(job)
    return work / job.chunks if task.part == "chunk" and job.chunks else work


class State:
    def __init__(self, config: CoreConfig, nodes: tuple[Node, ...] = ()) -> None:
        self.config = config
        self.limits = Limits(config.max_workers, config.flavor, config.can_split)
        self.jobs: dict[str, Job] = {}
        self.workers: dict[str, Worker] = {}
        self.tasks: dict[str, Task] = {}
        self.job_tasks: dict[str, tuple[str, ...]] = {}  # job id -> its tasks, in order
        # Waiting whole jobs (value None) and parts of split jobs (their PartRef), by id.
        self.waiting: dict[str, PartRef | None] = {}
        self.alive: dict[str, None] = {}  # workers not stopped
        self.used: dict[str, tuple[float, float]] = {}  # node -> cores, GB reserved
        self.counters = Counters()
        self.stats = StatsTracker()
        self.tx: Direct = Direct()  # the step's transaction, set by Core.handle
        self.nodes: tuple[Node, ...] = nodes
        self.refused: dict[str, int] = {}
        # Output reuse (``core/reuse.py``): the job whose output serves each request key,
        # the job in progress that identical requests attach to, and who is attached.
        self.outputs: dict[ReuseKey, str] = {}
        self.leaders: dict[ReuseKey, str] = {}
        self.followers: dict[str, tuple[str, ...]] = {}
        self.touched: dict[str, None] = {}  # jobs changed by the step under way
        # The outputs of completed jobs no longer in memory (``evict``), by job id.
        self.done_outputs: dict[str, str | None] = {}
        # Retention (``core/retention.py``): ended jobs and stopped workers, oldest first.
        self.ended_jobs: dict[str, float] = {}
        self.ended_workers: dict[str, float] = {}
        self.invalidate()

    # ---- changes, through the transaction ----------------------------------------------
    # ``stored``: loaded as the store holds it, so nothing of it needs writing again.
    def add_job(self, job: Job, stored: bool = False) -> None:
        self.tx.put(self.jobs, job.id, job)
        if not stored:
            self.tx.job(job)

    def add_worker(self, worker: Worker, stored: bool = False) -> None:
        """A new worker (or one loaded from the store); a live one reserves its node."""
        self.tx.put(self.workers, worker.id, worker)
        if worker.state is not WorkerState.STOPPED:
            self.tx.put(self.alive, worker.id, None)
            self.reserve(worker.node, worker, +1)
        if not stored:
            self.tx.worker(worker)
        self._dirty_workers[worker.id] = None

    def add_task(self, task: Task, stored: bool = False) -> None:
        self.tx.put(self.tasks, task.id, task)
        self.tx.put(self.job_tasks, task.job_id, (*self.job_tasks.get(task.job_id, ()), task.id))
        if not stored:
            self.tx.task(task)

    def output_of(self, job_id: str) -> str | None:
        """The output of a completed job, in memory or not."""
        job = self.jobs.get(job_id)
        return job.output if job is not None else self.done_outputs.get(job_id)

    def evict(self, job_id: str, held: set[str]) -> bool:
        """A finished job leaves memory (the store keeps it), with its tasks, unless a live
        worker still holds one of them (``held``: their ids) or jobs follow it: False then.
        Not a change of the state (nothing to store): a cache drop, between steps."""
        job = self.jobs.get(job_id)
        if job is None:
            return True
        tasks = self.job_tasks.get(job_id, ())
        if job_id in self.followers or not held.isdisjoint(tasks):
            return False
        if self.outputs.get(reuse_key(job)) == job_id:
            self.done_outputs[job_id] = job.output
        for task_id in tasks:
            self.tasks.pop(task_id, None)
        self.job_tasks.pop(job_id, None)
        del self.jobs[job_id]
        return True

    def job(self, job: Job) -> Job:
        """About to change ``job``."""
        self.touched[job.id] = None
        return self.tx.job(job)

    def worker(self, worker: Worker) -> Worker:
        """About to change ``worker``."""
        self._dirty_workers[worker.id] = None
        return self.tx.worker(worker)

    def task(self, task: Task) -> Task:
        return self.tx.task(task)

    def count(self) -> Counters:
        return self.tx.record(self.counters)

    def enqueue(self, key: str, ref: PartRef | None = None) -> None:
        """A whole job (``ref`` None) or a part waits for a worker."""
        present = key in self.waiting  # keeps its place in the dict, not its rank's
        self.tx.put(self.waiting, key, ref)
        self._job_views.pop(key, None)
        rank = self.rank(self.jobs[ref.job_id if ref else key])
        in_order = not present and rank >= self._last_rank
        if self._disorder is not None and not in_order:
            self._disorder[key] = None
        if in_order and self._disorder == {} and self._waiting_view is not None:
            self._appended.append(key)  # the view grows at its end: no need to rebuild it
        else:
            self._waiting_view = None
        self._last_rank = max(self._last_rank, rank)

    def rank(self, job: Job) -> float:
        """Where the job stands in the queue: its arrival, earlier by its priority's worth."""
        return job.received_at - job.priority * self.config.priority_aging

    def dequeue(self, key: str) -> None:
        if key in self.waiting:
            self.tx.pop(self.waiting, key)
            self._waiting_view = None
            if self._disorder:
                self._disorder.pop(key, None)

    def reserve(self, node: str | None, worker: Worker, sign: int) -> None:
        if node is None:
            return
        cpus, mem = self.used.get(node, (0.0, 0.0))
        flavor = worker.flavor
        self.tx.put(self.used, node, (cpus + sign * flavor.cpus, mem + sign * flavor.memory_gb))
        self._node_view = None

    def stopped(self, worker: Worker) -> None:
        self.tx.pop(self.alive, worker.id)
        self.reserve(worker.node, worker, -1)
        if self.config.retention:
            self.tx.put(self.ended_workers, worker.id, worker.stopped_at or 0.0)

    def set_nodes(self, nodes: tuple[Node, ...]) -> None:
        """What the runtime offers now (an observation, not a step)."""
        if nodes != self.nodes:
            self.nodes = nodes
            self._node_view = None

    def refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1

    # ---- the view ----------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget every cached view (after a step was undone or sealed). Every attribute
        set here, and only those, starts with an underscore (``caches``)."""
        self._job_views: dict[str, JobView] = {}
        self._worker_views: dict[str, WorkerView] = {}
        # Per state, the views in creation order and their creation ranks (for bisect), so
        # that a view's idle, booting and busy workers need no pass over all of them.
        self._ranks: dict[str, int] = {w: i for i, w in enumerate(self.workers)}
        self._in_state: dict[WorkerState, tuple[list[int], list[WorkerView]]] = {
            s: ([], []) for s in _ALIVE
        }
        self._state_tuples: dict[WorkerState, tuple[WorkerView, ...]] = {}
        # The idle ones by age too (ClusterView.idle_by_age): their keys, for bisect.
        self._age_keys: list[tuple[float, str]] = []
        self._by_age: list[WorkerView] = []
        self._by_age_tuple: tuple[WorkerView, ...] | None = None
        self._idle_unknown = 0  # idle views without idle_since
        self._dirty_workers: dict[str, None] = dict.fromkeys(
            w for w in self.workers if w in self.alive
        )
        self._waiting_view: tuple[JobView, ...] | None = None
        self._waiting_groups: tuple[tuple[int, ...], ...] = ()
        # While the view is in rank order: the positions of each job kind, and the keys
        # enqueued after the view was built, in order (added to it by the next ``view``).
        self._kinds: dict[tuple[object, ...], list[int]] = {}
        self._appended: list[str] = []
        self._workers_view: tuple[WorkerView, ...] | None = None
        self._node_view: tuple[NodeView, ...] | None = None
        # The waiting keys out of rank order in ``waiting`` (which is in order of enqueueing):
        # the view is sorted while there is one. None: not known (found on the next view).
        self._disorder: dict[str, None] | None = None
        self._last_rank = float("-inf")  # the highest rank enqueued in order

    def caches(self) -> dict[str, object]:
        """The view caches as they are (every attribute ``invalidate`` sets), for
        ``restore_caches``: a step's caches are right again once the step is stored."""
        return {k: v for k, v in vars(self).items() if k.startswith("_")}

    def restore_caches(self, caches: dict[str, object]) -> None:
        vars(self).update(caches)
        self._node_view = None  # the nodes may have been observed again meanwhile

    def view(self, now: float) -> ClusterView:
        if self._waiting_view is None:
            views = [self._job_view(key, ref) for key, ref in self.waiting.items()]
            if self._disorder is None:
                self._find_disorder(views)
            elif self._disorder:  # a step undone may have left keys that no longer wait
                self._disorder = {k: None for k in self._disorder if k in self.waiting}
            if self._disorder:
                views.sort(key=_RANK)
            self._waiting_view = tuple(views)
            self._kinds = {}
            self._add_kinds(views, 0)
            self._appended = []
        elif self._appended:  # jobs enqueued in order since: after the others
            new = [self._job_view(key, self.waiting[key]) for key in self._appended]
            self._add_kinds(new, len(self._waiting_view))
            self._waiting_view += tuple(new)
            self._appended = []
        if self._dirty_workers:
            self._refresh_workers()
        if self._workers_view is None:
            self._workers_view = tuple(self._worker_views.values())
        view = _make_view(
            now,
            self._waiting_view,
            self._workers_view,
            self.node_views(),
            self.limits,
            self.stats.snapshot(now),
        )
        tuples = self._state_tuples
        for state in _ALIVE:
            if state not in tuples:
                tuples[state] = tuple(self._in_state[state][1])
        cache = view.__dict__  # ClusterView's caches, filled
        cache["_by_state"] = dict(tuples)
        cache["_waiting_groups"] = self._waiting_groups
        if self._by_age_tuple is None:
            self._by_age_tuple = tuple(self._by_age)
        cache["_idle_by_age"] = self._by_age_tuple
        cache["_idle_since_known"] = self._idle_unknown == 0
        return view

    def _add_kinds(self, views: list[JobView], start: int) -> None:
        """``views`` at positions ``start``…: their kinds' positions (``group_kinds``)."""
        kinds = self._kinds
        for i, j in enumerate(views, start):
            key = (j.part, j.input_duration, j.input_pixel_rate, j.speed)  # policies.job_kind
            group = kinds.get(key)
            if group is None:
                kinds[key] = [i]
            else:
                group.append(i)
        self._waiting_groups = tuple(tuple(g) for g in kinds.values())

    def _find_disorder(self, views: list[JobView]) -> None:
        """The keys whose rank is below one enqueued before them (``views`` in dict order)."""
        top, disorder = float("-inf"), {}
        for v in views:
            if v.ranked_at < top:
                disorder[v.id] = None
            else:
                top = v.ranked_at
        self._disorder, self._last_rank = disorder, top

    def node_views(self) -> tuple[NodeView, ...]:
        if self._node_view is None:
            self._node_view = tuple(self._node(n) for n in self.nodes)
        return self._node_view

    def _job_view(self, key: str, ref: PartRef | None) -> JobView:
        view = self._job_views.get(key)
        if view is not None:
            return view
        job = self.jobs[ref.job_id if ref else key]
        duration = job.input_duration
        if ref is not None and ref.kind == "chunk" and duration:
            duration = duration / max(1, job.chunks)
        elif ref is not None:
            duration = None if ref.kind == "merge" else duration
        view = _make_job(  # JobView's fields, in order
            key,
            job.id_video,
            job.bitrate,
            job.speed._value_,
            job.received_at,
            job.attempts,
            duration,
            job.input_size if ref is None else None,
            job.input_pixel_rate,
            ref.kind if ref else None,
            ref.job_id if ref else None,
            job.input_frames if ref is None and job.input_fps else None,
            job.priority,
            self.rank(job) if job.priority else None,
        )
        self._job_views[key] = view
        return view

    def _refresh_workers(self) -> None:
        # Workers are marked in creation order (a new one after every other), and a view
        # updated in place keeps its place: the views stay in creation order.
        views = self._worker_views
        for wid in self._dirty_workers:
            w = self.workers.get(wid)
            old = views.get(wid)
            if old is not None:
                self._leave(old)
            if w is None or w.state is WorkerState.STOPPED:
                views.pop(wid, None)
            else:
                view = views[wid] = self._worker_view(w)
                self._enter(view)
        self._dirty_workers.clear()
        self._workers_view = None

    def _rank(self, wid: str) -> int:
        rank = self._ranks.get(wid)
        if rank is None:
            rank = self._ranks[wid] = len(self._ranks)
        return rank

    def _enter(self, view: WorkerView) -> None:
        ranks, views = self._in_state[view.state]
        rank = self._rank(view.id)
        i = bisect_left(ranks, rank)
        ranks.insert(i, rank)
        views.insert(i, view)
        self._state_tuples.pop(view.state, None)
        if view.state is WorkerState.IDLE:
            key = idle_age(view)
            i = bisect_left(self._age_keys, key)
            self._age_keys.insert(i, key)
            self._by_age.insert(i, view)
            self._by_age_tuple = None
            self._idle_unknown += view.idle_since is None

    def _leave(self, view: WorkerView) -> None:
        ranks, views = self._in_state[view.state]
        i = bisect_left(ranks, self._rank(view.id))
        del ranks[i], views[i]
        self._state_tuples.pop(view.state, None)
        if view.state is WorkerState.IDLE:
            i = bisect_left(self._age_keys, idle_age(view))
            del self._age_keys[i], self._by_age[i]
            self._by_age_tuple = None
            self._idle_unknown -= view.idle_since is None

    def _worker_view(self, w: Worker) -> WorkerView:
        task = self.tasks.get(w.task_id) if w.task_id else None
        if task is None:
            return _make_worker(
                w.id, w.flavor, w.state, w.created_at, w.node, w.idle_since, None, None, None
            )
        job = self.jobs[task.job_id]
        return _make_worker(  # WorkerView's fields, in order
            w.id,
            w.flavor,
            w.state,
            w.created_at,
            w.node,
            w.idle_since,
            job.id,
            task.assigned_at,
            task_work(job, task),
        )

    def _node(self, n: Node) -> NodeView:
        cpus, mem = self.used.get(n.name, (0.0, 0.0))
        return NodeView(n.name, n.cpus, n.memory_gb, n.cpus - cpus, n.memory_gb - mem)
