"""The simulated controller, runtime and workers: views built and decisions checked exactly as
``controller/core.py`` does, on simulated time.

- The view (``ClusterView``): waiting jobs in arrival order, every worker not stopped in
  creation order, every node with its free cores and memory, the limits. Views of jobs,
  workers and nodes are cached and rebuilt only for what changed.
- Decisions are applied in the controller's order (stops, then assignments, then starts) with
  its checks: a stop of a busy, stopped or unknown worker is refused; an assignment needs a
  waiting job and an idle worker; a start needs a known flavor, room under ``max_workers`` and
  a node with room for the flavor (the runtime's placement, or the node the policy named).
- Placement (when the policy names no node): the node with the most free cores that fits the
  flavor (ties: most free memory, then node order), as OpenStack's and Kubernetes' default
  spreading weighers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from dacirco.domain import FLAVORS, Flavor, Node, WorkerState
from dacirco.policies.base import (
    Assign,
    ClusterView,
    JobView,
    Limits,
    NodeView,
    Split,
    StartWorker,
    StopWorker,
    WorkerView,
)
from dacirco.policies.stats import StatsTracker
from dacirco.policies.work import work_units
from dacirco.sim.workload import SimJob

MAX_CHUNKS = 16
BOOTING, IDLE, BUSY, STOPPED = (
    WorkerState.BOOTING,
    WorkerState.IDLE,
    WorkerState.BUSY,
    WorkerState.STOPPED,
)


@dataclass(frozen=True)
class DataCenter:
    nodes: tuple[Node, ...]

    @classmethod
    def reference(cls) -> DataCenter:
        """SPEC §1: compute1..3, 6 cores and 16 GB each."""
        return cls.uniform(3, 6, 16.0)

    @classmethod
    def uniform(cls, count: int, cpus: int, memory_gb: float) -> DataCenter:
        if count < 1 or cpus < 1 or memory_gb <= 0:
            raise ValueError("a data center needs >= 1 node, >= 1 core and some memory")
        return cls(tuple(Node(f"compute{i + 1}", cpus, memory_gb) for i in range(count)))

    @property
    def cpus(self) -> int:
        return sum(n.cpus for n in self.nodes)

    @property
    def memory_gb(self) -> float:
        return sum(n.memory_gb for n in self.nodes)

    def holds(self, flavor: Flavor) -> int:
        """How many workers of ``flavor`` fit on the empty data center."""
        return sum(
            int(min(n.cpus // flavor.cpus, n.memory_gb // flavor.memory_gb)) for n in self.nodes
        )


class JobState:
    """A job, or a part (chunk, merge) of a split one: ``parent`` then names the job."""

    __slots__ = (
        "assigned", "job", "left", "left_of", "parent", "part", "state", "steps", "task_id",
        "view", "work", "worker",
    )  # fmt: skip

    def __init__(
        self, job: SimJob, part: str | None = None, parent: JobState | None = None
    ) -> None:
        self.job = job
        self.state = "Waiting"
        self.part, self.parent = part, parent
        self.left = self.left_of = 0  # a split job: its chunks not done yet, of how many
        self.view = JobView(
            id=job.id,
            id_video=job.movie.name,
            bitrate=job.bitrate,
            speed=job.speed,
            received_at=job.arrival,
            input_duration=job.movie.duration,
            input_size=job.movie.size_bytes,
            input_pixel_rate=job.movie.pixel_rate,
            part=part,
            parent_id=parent.job.id if parent is not None else None,
        )
        self.work = work_units(job.movie.duration, job.movie.pixel_rate, job.speed)
        if part == "merge":
            self.work = 0.0
        self.assigned: float | None = None
        self.steps: tuple[float, float, float, float] | None = None  # started..uploaded
        self.worker: SimWorker | None = None
        self.task_id: str | None = None


class SimWorker:
    __slots__ = (
        "boot_s",
        "busy",
        "created",
        "destroyed",
        "flavor",
        "id",
        "job",
        "name",
        "node",
        "registered",
        "state",
        "view",
    )

    def __init__(self, wid: str, name: str, flavor: Flavor, node: int, now: float) -> None:
        self.id, self.name, self.flavor, self.node = wid, name, flavor, node
        self.created = now
        self.registered: float | None = None
        self.destroyed: float | None = None
        self.state = BOOTING
        self.job: JobState | None = None
        self.busy: list[tuple[float, float]] = []
        self.boot_s = 0.0
        self.view: WorkerView


class ClusterState:
    """Jobs, workers and nodes, the cached view, and the decision checks."""

    def __init__(self, datacenter: DataCenter, limits: Limits) -> None:
        self.nodes = datacenter.nodes
        self.limits = limits
        self.free_cpus = [float(n.cpus) for n in self.nodes]
        self.free_mem = [float(n.memory_gb) for n in self.nodes]
        self._node_views = [self._node_view(i) for i in range(len(self.nodes))]
        self._node_index = {n.name: i for i, n in enumerate(self.nodes)}
        self.waiting: dict[str, JobView] = {}
        self.jobs: dict[str, JobState] = {}
        self.workers: dict[str, SimWorker] = {}  # every worker ever, creation order
        self.alive: dict[str, WorkerView] = {}  # not stopped, creation order
        self.idle: dict[str, SimWorker] = {}
        self.placed_on: set[int] = set()  # nodes that got a worker already
        self._views: list[tuple | None] = [None, None, None]  # waiting, workers, nodes
        self.refused: dict[str, int] = {}
        self._seq = 0
        self.stats = StatsTracker()  # as the controller's: arrivals, boots, task times

    # ---- the view ------------------------------------------------------------------------
    def view(self, now: float) -> ClusterView:
        v = self._views
        if v[0] is None:
            v[0] = tuple(self.waiting.values())
        if v[1] is None:
            v[1] = tuple(self.alive.values())
        if v[2] is None:
            v[2] = tuple(self._node_views)
        return ClusterView(now, v[0], v[1], v[2], self.limits, self.stats.snapshot(now))

    def _node_view(self, i: int) -> NodeView:
        n = self.nodes[i]
        return NodeView(n.name, n.cpus, n.memory_gb, self.free_cpus[i], self.free_mem[i])

    def _reserve(self, i: int, flavor: Flavor, sign: int) -> None:
        self.free_cpus[i] -= sign * flavor.cpus
        self.free_mem[i] -= sign * flavor.memory_gb
        self._node_views[i] = self._node_view(i)
        self._views[2] = None

    def set_worker(self, w: SimWorker, state: WorkerState, idle_since: float | None) -> None:
        w.state = state
        js = w.job
        node = self.nodes[w.node].name
        if js is None:
            w.view = WorkerView(w.id, w.flavor, state, w.created, node, idle_since)
        else:
            w.view = WorkerView(
                w.id, w.flavor, state, w.created, node, idle_since, js.job.id, js.assigned, js.work
            )
        if state is STOPPED:
            del self.alive[w.id]
        else:
            self.alive[w.id] = w.view
        self.idle.pop(w.id, None)
        if state is IDLE:  # appended: ``idle`` stays in the order workers became idle
            self.idle[w.id] = w
        self._views[1] = None

    def add_waiting(self, js: JobState) -> None:
        self.jobs[js.job.id] = js
        self.waiting[js.job.id] = js.view
        self._views[0] = None

    def _refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1

    # ---- checks (controller/core.py: _apply_stop, _apply_assign, _apply_start) -------------
    def check_stop(self, stop: StopWorker) -> SimWorker | None:
        w = self.workers.get(stop.worker_id)
        if w is None or w.state is STOPPED or w.state is BUSY:
            self._refuse("stop: worker busy, stopped or unknown")
            return None
        return w

    def check_assign(self, assign: Assign) -> tuple[JobState, SimWorker] | None:
        js = self.jobs.get(assign.job_id)
        if js is None or js.state != "Waiting":
            self._refuse("assign: job not waiting")
            return None
        w = self.workers.get(assign.worker_id)
        if w is None or w.state is not IDLE:
            self._refuse("assign: worker not idle")
            return None
        del self.waiting[js.job.id]
        self._views[0] = None
        return js, w

    def check_split(self, split: Split) -> JobState | None:
        js = self.jobs.get(split.job_id)
        if not self.limits.can_split:
            self._refuse("split: not enabled")
        elif js is None or js.state != "Waiting" or js.part is not None:
            self._refuse("split: not a waiting whole job")
        elif not 2 <= split.chunks <= MAX_CHUNKS:
            self._refuse(f"split: chunks must be 2..{MAX_CHUNKS}")
        else:
            del self.waiting[js.job.id]
            self._views[0] = None
            return js
        return None

    def check_start(self, start: StartWorker) -> tuple[Flavor, int] | None:
        flavor = FLAVORS.get(start.flavor)
        if flavor is None:
            self._refuse("start: unknown flavor")
            return None
        if self.limits.max_workers - len(self.alive) <= 0:
            self._refuse("start: max_workers reached")
            return None
        node = self.place(flavor) if start.node is None else self._node_index.get(start.node)
        if node is None or not self._fits(node, flavor):
            self._refuse("start: node lacks capacity (or unknown)")
            return None
        return flavor, node

    def _fits(self, i: int, flavor: Flavor) -> bool:
        return self.free_cpus[i] >= flavor.cpus and self.free_mem[i] >= flavor.memory_gb

    def place(self, flavor: Flavor) -> int | None:
        best, key = None, None
        for i in range(len(self.nodes)):
            if self._fits(i, flavor):
                k = (self.free_cpus[i], self.free_mem[i], -i)
                if key is None or k > key:
                    best, key = i, k
        return best

    # ---- changes ---------------------------------------------------------------------------
    def new_worker(self, flavor: Flavor, node: int, now: float) -> SimWorker:
        self._seq += 1
        w = SimWorker(f"w{self._seq:06d}", f"dacirco-worker-{self._seq:03d}", flavor, node, now)
        self.workers[w.id] = w
        self._reserve(node, flavor, +1)
        self.set_worker(w, BOOTING, None)
        return w

    def stop_worker(self, w: SimWorker, now: float) -> None:
        w.destroyed = now
        self._reserve(w.node, w.flavor, -1)
        self.set_worker(w, STOPPED, None)
