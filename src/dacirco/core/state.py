"""What the core owns: jobs, workers, tasks, the waiting queue, the parts of split jobs, node
capacity and a few counters; and (``views.py``, its mixin) the policy's view of it, kept
for what changed only.

Every change goes through the step's transaction (``self.tx``: ``Txn`` in the controller,
``Direct`` in the simulator) so that it is persisted and can be undone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    Limits,
)
from dacirco.policies.stats import StatsTracker

from .txn import Direct
from .views import PartRef, Views


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


def part_id(job_id: str, kind: str, index: int) -> str:
    return f"{job_id}#merge" if kind == "merge" else f"{job_id}#{index}"


class State(Views):
    def __init__(self, config: CoreConfig, nodes: tuple[Node, ...] = ()) -> None:
        self.config = config
        theirs = any(n.opportunistic for n in nodes)  # policies.preemptible.has_pilots
        self.limits = Limits(config.max_workers, config.flavor, config.can_split, theirs)
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
    # Otherwise an entity whose id no index holds is the step's own (``Txn``: no images); an
    # entity brought back into memory to be changed must come ``stored`` and then be touched.
    def add_job(self, job: Job, stored: bool = False) -> None:
        new = job.id not in self.jobs
        self.tx.put(self.jobs, job.id, job)
        if not stored:
            self.tx.job(job, new)

    def add_worker(self, worker: Worker, stored: bool = False) -> None:
        """A new worker (or one loaded from the store); a live one reserves its node."""
        new = worker.id not in self.workers
        self.tx.put(self.workers, worker.id, worker)
        if worker.state is not WorkerState.STOPPED:
            self.tx.put(self.alive, worker.id, None)
            self.reserve(worker.node, worker, +1)
        if not stored:
            self.tx.worker(worker, new)
        self._dirty_workers[worker.id] = None

    def add_task(self, task: Task, stored: bool = False) -> None:
        new = task.id not in self.tasks
        self.tx.put(self.tasks, task.id, task)
        self.tx.put(self.job_tasks, task.job_id, (*self.job_tasks.get(task.job_id, ()), task.id))
        if not stored:
            self.tx.task(task, new)

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
        # Only a job that did its own work serves its output (reuse.settle): not one reused.
        if job.reused_from is None and self.outputs.get(reuse_key(job)) == job_id:
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
        if in_order and self._disorder == {} and self._queue is not None:
            self._appended.append(key)  # the view grows at its end: no need to rebuild it
        else:
            self._queue = None
        self._last_rank = max(self._last_rank, rank)

    def rank(self, job: Job) -> float:
        """Where the job stands in the queue: its arrival, earlier by its priority's worth."""
        return job.received_at - job.priority * self.config.priority_aging

    def dequeue(self, key: str) -> None:
        if key in self.waiting:
            self.tx.pop(self.waiting, key)
            self._job_views.pop(key, None)
            if not self._left_first(key):
                self._queue = None
            if self._disorder:
                self._disorder.pop(key, None)

    def reserve(self, node: str | None, worker: Worker, sign: int) -> None:
        if node is None:
            return
        cpus, mem = self.used.get(node, (0.0, 0.0))
        flavor = worker.flavor
        self.tx.put(self.used, node, (cpus + sign * flavor.cpus, mem + sign * flavor.memory_gb))
        self.node_used(node)

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
            theirs = any(n.opportunistic for n in nodes)
            if theirs != self.limits.opportunistic:
                self.limits = replace(self.limits, opportunistic=theirs)

    def refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1

    # ---- the view ----------------------------------------------------------------------
