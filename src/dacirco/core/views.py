"""The policy's view of the core's state (``ClusterView``), kept for what changed only: the
waiting jobs' views (grown at their end while jobs come in order, cut at their start while
they are assigned in order), the workers' (counts by state, the idle ones by age), the
nodes' (each made again alone). A view's tuples of workers, its statistics and its groups of
waiting jobs are made when a policy first reads them, or before they would change if the view
is still held (``_fill``, ``_settle``): a call costs no pass over the workers. A mixin of
``State``: every attribute it caches starts with an underscore and is set by ``invalidate``
(``caches``, ``restore_caches``)."""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Callable
from operator import attrgetter
from typing import NamedTuple

from dacirco.domain import Node, Worker, WorkerState
from dacirco.policies.base import ClusterView, JobView, NodeView, WorkerView, idle_age
from dacirco.policies.stats import maker
from dacirco.policies.work import P1080

from .work import part_share, split_into, task_work, work_pixel_rate

_RANK = attrgetter("ranked_at")
_COMPACT = 4096  # jobs gone from the head of the queue list before it may be made again
# A view's workers and statistics are made when a policy first reads them (``_fill``).
_make_view = maker(
    ClusterView,
    later=("waiting", "workers", "stats"),
    extra=(  # ClusterView's caches, filled
        "waiting_count",
        "_waiting_list",
        "_waiting_start",
        "_waiting_groups_of",
        "_idle_since_known",
        "_worker_count",
        "_counts",
        "_idle_live",
        "_fill",
    ),
)
_make_job = maker(JobView)
_make_worker = maker(WorkerView)
_ALIVE = (WorkerState.BOOTING, WorkerState.IDLE, WorkerState.BUSY)


class PartRef(NamedTuple):
    """A waiting part of a split job: a chunk (index 1..chunks) or its merge (index 0)."""

    job_id: str
    kind: str
    index: int


def _settler(ref: weakref.ref[Views]) -> Callable[[], None]:
    def settle() -> None:
        views = ref()
        if views is not None:
            views._settle()

    return settle


class WaitingGroups:
    """A view's ``waiting_groups``, made when a policy first asks: the positions of each
    kind's jobs in the waiting view, from the core's positions (counted from ``base``, the
    view's first job, up to ``base + count``; the lists only grow at their end, so later
    jobs are left out), the groups in the order of their first job, as ``group_kinds``."""

    __slots__ = ("_base", "_count", "_kinds", "_made")

    def __init__(self, kinds: dict[tuple[object, ...], list[int]], base: int, count: int) -> None:
        self._kinds, self._base, self._count = kinds, base, count
        self._made: tuple[tuple[int, ...], ...] | None = None

    def __call__(self) -> tuple[tuple[int, ...], ...]:
        if self._made is None:
            base, end, groups = self._base, self._base + self._count, []
            for positions in self._kinds.values():
                lo = bisect_left(positions, base)
                hi = bisect_left(positions, end, lo)
                if hi > lo:
                    groups.append(tuple([p - base for p in positions[lo:hi]]))
            groups.sort()  # by their first job: the first group of the queue first
            self._made = tuple(groups)
        return self._made


class Views:
    """The view-building half of ``State`` (see the module's docstring)."""

    def invalidate(self) -> None:
        """Forget every cached view (after a step was undone or sealed). Every attribute
        set here, and only those, starts with an underscore (``caches``)."""
        if "_last_view" in vars(self):
            self._settle()
        self.stats.before_change = _settler(weakref.ref(self))  # no cycle through the state
        # The last view made, while its workers and statistics are not made yet: they are
        # made (``_settle``) before what they are made from changes, if it is still held.
        self._last_view: weakref.ref[ClusterView] | None = None
        self._job_views: dict[str, JobView] = {}
        # The workers' views in creation order (one updated in place keeps its place), how
        # many are in each state; the tuples a view's ``_fill`` makes of them, kept until a
        # worker changes.
        self._worker_views: dict[str, WorkerView] = {}
        self._counts: dict[WorkerState, int] = dict.fromkeys(_ALIVE, 0)
        self._counts_made: dict[WorkerState, int] | None = None  # the views' copy
        self._workers_view: tuple[WorkerView, ...] | None = None
        self._by_state: dict[WorkerState, tuple[WorkerView, ...]] | None = None
        # The idle ones by age (ClusterView.idle_by_age): their keys, for bisect.
        self._age_keys: list[tuple[float, str]] = []
        self._by_age: list[WorkerView] = []
        self._by_age_tuple: tuple[WorkerView, ...] | None = None
        self._idle_unknown = 0  # idle views without idle_since
        self._dirty_workers: dict[str, None] = dict.fromkeys(
            w for w in self.workers if w in self.alive
        )
        # The waiting jobs' views in queue order since the last full build, in a list that
        # only grows at its end: the queue is ``_queue[_base:]``, made into a view's
        # tuple only if a policy reads it (a view costs no copy of the queue). While it is
        # in rank order: the positions of each job kind in that list, and the keys enqueued
        # after the last view, in order (added to it by the next ``view``). ``_head``: how
        # many of its first jobs left the queue since (it loses them in the next ``view``).
        # Made again once most of the list left the queue.
        self._queue: list[JobView] | None = None
        self._kinds: dict[tuple[object, ...], list[int]] = {}
        self._base = 0
        self._head = 0
        self._groups: WaitingGroups | None = None
        self._appended: list[str] = []
        # The nodes' views: the tuple, and (while it is not None) the same views in a list,
        # each node's place in it and the nodes whose use changed since (``reserve``).
        self._node_view: tuple[NodeView, ...] | None = None
        self._node_list: list[NodeView] = []
        self._node_at: dict[str, int] = {}
        self._nodes_dirty: dict[str, None] = {}
        # The waiting keys out of rank order in ``waiting`` (which is in order of enqueueing):
        # the view is sorted while there is one. None: not known (found on the next view).
        self._disorder: dict[str, None] | None = None
        self._last_rank = float("-inf")  # the highest rank enqueued in order

    def caches(self) -> dict[str, object]:
        """The view caches as they are (every attribute ``invalidate`` sets), for
        ``restore_caches``: a step's caches are right again once the step is stored."""
        return {k: v for k, v in vars(self).items() if k.startswith("_")}

    def restore_caches(self, caches: dict[str, object]) -> None:
        self._settle()
        vars(self).update(caches)
        self._last_view = None  # made whole when the caches were taken, if still held
        self._node_view = None  # the nodes may have been observed again meanwhile

    def view(self, now: float) -> ClusterView:
        if self._last_view is not None:
            self._settle()
        queue = self._queue
        if queue is not None and self._base > _COMPACT and 2 * self._base > len(queue):
            queue = None  # most of the list left the queue: made again, without them
        if queue is None:
            views = [self._job_view(key, ref) for key, ref in self.waiting.items()]
            if self._disorder is None:
                self._find_disorder(views)
            elif self._disorder:  # a step undone may have left keys that no longer wait
                self._disorder = {k: None for k in self._disorder if k in self.waiting}
            if self._disorder:
                views.sort(key=_RANK)
            queue = self._queue = views
            self._kinds, self._base, self._head, self._groups = {}, 0, 0, None
            self._add_kinds(views, 0)
            self._appended = []
        else:
            if self._head:  # its first jobs left the queue (assigned in order)
                self._base += self._head
                self._head, self._groups = 0, None
            if self._appended:  # jobs enqueued in order since: after the others
                new = [self._job_view(key, self.waiting[key]) for key in self._appended]
                self._add_kinds(new, len(queue))
                queue += new
                self._appended, self._groups = [], None
        count = len(queue) - self._base
        if self._dirty_workers:
            self._refresh_workers()
        if self._groups is None:
            self._groups = WaitingGroups(self._kinds, self._base, count)
        nodes = self._node_view
        if nodes is None or self._nodes_dirty:
            nodes = self.node_views()
        view = _make_view(
            now,
            nodes,
            self.limits,
            count,
            queue,  # the view's waiting: queue[_base:] now (ClusterView.waiting, when read)
            self._base,
            self._groups,
            self._idle_unknown == 0,
            len(self._worker_views),
            self._counts_view(),
            self._by_age,  # read as it is until _settle (ClusterView.oldest_idle)
            self._fill,
        )
        self._last_view = weakref.ref(view)
        return view

    def _fill(self, view: ClusterView) -> None:
        """The view's workers (all, by state, idle by age) and statistics, as they are now:
        as when it was made, since nothing they are made from changes before ``_settle``."""
        workers = self._workers_view
        if workers is None:
            workers = self._workers_view = tuple(self._worker_views.values())
        if self._by_state is None:
            by_state: dict[WorkerState, list[WorkerView]] = {s: [] for s in _ALIVE}
            for w in workers:
                by_state[w.state].append(w)
            self._by_state = {s: tuple(ws) for s, ws in by_state.items()}
        if self._by_age_tuple is None:
            self._by_age_tuple = tuple(self._by_age)
        cache = view.__dict__
        del cache["_idle_live"]
        cache["workers"] = workers
        cache["_by_state"] = self._by_state  # shared until a worker changes
        cache["_idle_by_age"] = self._by_age_tuple
        cache["stats"] = self.stats.snapshot(view.now)

    def _settle(self) -> None:
        """Before the workers or the statistics change: the last view, if still held and not
        whole, gets them as they were."""
        ref, self._last_view = self._last_view, None
        view = ref() if ref is not None else None
        if view is not None:
            fill = view.__dict__.pop("_fill", None)
            if fill is not None:
                fill(view)

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

    def _left_first(self, key: str) -> bool:
        """``key`` left the queue: True if it was the waiting view's first job (still there),
        which then only loses its first jobs (``view``), not rebuilt."""
        queue, at = self._queue, self._base + self._head
        if queue is not None and at < len(queue) and queue[at].id == key:
            self._head += 1
            return True
        return False

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
            self._node_list = [self._node(n) for n in self.nodes]
            self._node_at = {n.name: i for i, n in enumerate(self.nodes)}
            self._nodes_dirty = {}
            self._node_view = tuple(self._node_list)
        elif self._nodes_dirty:  # only the nodes whose use changed are made again
            views, at, nodes = self._node_list, self._node_at, self.nodes
            for name in self._nodes_dirty:
                i = at.get(name)
                if i is not None:
                    views[i] = self._node(nodes[i])
            self._nodes_dirty = {}
            self._node_view = tuple(views)
        return self._node_view

    def node_used(self, name: str) -> None:
        """The use of node ``name`` changed: its view is made again (alone) when next asked."""
        if self._node_view is not None:
            self._nodes_dirty[name] = None

    def _job_view(self, key: str, ref: PartRef | None) -> JobView:
        view = self._job_views.get(key)
        if view is not None:
            return view
        job = self.jobs[ref.job_id if ref else key]
        duration, rate = job.input_duration, work_pixel_rate(job)
        if ref is not None and ref.kind == "chunk" and job.outputs:
            # A group of renditions: the whole movie, at its renditions' share of the pixels.
            rate = (rate or P1080) * part_share(job, ref.index)
        elif ref is not None and ref.kind == "chunk" and duration:
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
            rate,
            ref.kind if ref else None,
            ref.job_id if ref else None,
            split_into(job) if ref is None else None,
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
        self._workers_view = self._by_state = None

    def _counts_view(self) -> dict[WorkerState, int]:
        if self._counts_made is None:
            self._counts_made = dict(self._counts)
        return self._counts_made

    def _enter(self, view: WorkerView) -> None:
        self._counts[view.state] += 1
        self._counts_made = None
        if view.state is WorkerState.IDLE:
            key = idle_age(view)
            i = bisect_left(self._age_keys, key)
            self._age_keys.insert(i, key)
            self._by_age.insert(i, view)
            self._by_age_tuple = None
            self._idle_unknown += view.idle_since is None

    def _leave(self, view: WorkerView) -> None:
        self._counts[view.state] -= 1
        self._counts_made = None
        if view.state is WorkerState.IDLE:
            i = bisect_left(self._age_keys, idle_age(view))
            del self._age_keys[i], self._by_age[i]
            self._by_age_tuple = None
            self._idle_unknown -= view.idle_since is None

    def _worker_view(self, w: Worker) -> WorkerView:
        task = self.tasks.get(w.task_id) if w.task_id else None
        job = self.jobs[task.job_id] if task is not None else None
        return _make_worker(  # WorkerView's fields, in order
            w.id,
            w.flavor,
            w.state,
            w.created_at,
            w.node,
            w.idle_since,
            job.id if job is not None else None,
            task.assigned_at if task is not None else None,
            task_work(job, task) if job is not None and task is not None else None,
            w.preemptible,
            task.part if task is not None else None,
        )

    def _node(self, n: Node) -> NodeView:
        cpus, mem = self.used.get(n.name, (0.0, 0.0))
        free_cpus, free_mem = n.cpus - cpus, n.memory_gb - mem
        return NodeView(n.name, n.cpus, n.memory_gb, free_cpus, free_mem, n.opportunistic)
