"""Idle cycles in the simulator: opportunistic nodes (office machines, a node agent each)
whose owners come and go by a trace, beside the data center.

While a machine's owner is away, its node offers its cores (``Node.opportunistic``: the
policy sees them as free but preemptible); when the owner comes back, the node offers
nothing and its pilots are preempted at once (``Exited(PREEMPTED)``, the core's own path: the
task waits again without counting an attempt). The figures: the share of the work done on
otherwise idle cycles, the preemptions and the work they threw away.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dacirco.core.stimuli import Exited
from dacirco.domain import ExitCause, Node, TaskState
from dacirco.sim.run import Simulation

OWNER = 3  # an engine event: an owner comes (data: (node, True)) or goes ((node, False))
DAY = 86400.0


@dataclass(frozen=True)
class OwnerTrace:
    """When the owner uses the machine: sorted, disjoint (start, end) intervals in seconds."""

    busy: tuple[tuple[float, float], ...]

    def busy_at(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.busy)

    @classmethod
    def office_hours(
        cls, seed: int, days: int = 1, start: float = 9 * 3600, end: float = 18 * 3600
    ) -> OwnerTrace:
        """Office hours with a lunch break, each edge moved by up to half an hour, and a
        few short spells at the machine in the evening; the same trace for the same seed."""
        rng = random.Random(f"dacirco-owner-{seed}")
        busy = []
        for d in range(days):
            base = d * DAY
            come, leave = start + rng.uniform(-1800, 1800), end + rng.uniform(-1800, 1800)
            lunch = 12.5 * 3600 + rng.uniform(-1800, 1800)
            busy += [(base + come, base + lunch), (base + lunch + 3600, base + leave)]
            for _ in range(rng.randint(0, 2)):
                at = base + leave + 1800 + rng.uniform(0, 4 * 3600)
                busy.append((at, at + rng.uniform(600, 2400)))
        busy.sort()
        merged: list[tuple[float, float]] = []
        for a, b in busy:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return cls(tuple(merged))


@dataclass
class IdleFigures:
    pilot_core_s: float = 0.0  # core-seconds of the tasks pilots completed
    total_core_s: float = 0.0  # of every completed task
    preemptions: int = 0  # pilots stopped by their owner
    tasks_preempted: int = 0  # of them, with a task under way
    lost_core_s: float = 0.0  # the work those tasks had done, thrown away

    @property
    def share(self) -> float:
        """The share of the work done on otherwise idle cycles."""
        return self.pilot_core_s / self.total_core_s if self.total_core_s else 0.0


class IdleCyclesSimulation(Simulation):
    """A ``Simulation`` with opportunistic nodes that follow their owners' traces."""

    keep_finished = True  # its figures read every task once the run is over

    def __init__(
        self,
        *args: Any,
        idle_nodes: Sequence[Node] = (),
        traces: Mapping[str, OwnerTrace] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.idle_nodes = [replace(n, opportunistic=True) for n in idle_nodes]
        self.traces = dict(traces or {})
        self.figures = IdleFigures()
        start = self.jobs[0].arrival if self.jobs else 0.0
        self.owner_here = {n.name: self._trace(n.name).busy_at(start) for n in self.idle_nodes}
        for n in self.idle_nodes:
            for a, b in self._trace(n.name).busy:
                if a > start:
                    self.engine.at(a, OWNER, (n.name, True))
                if b > start:
                    self.engine.at(b, OWNER, (n.name, False))
        self._publish()
        self.meta["idle_nodes"] = [n.name for n in self.idle_nodes]

    def _trace(self, name: str) -> OwnerTrace:
        return self.traces.get(name, OwnerTrace(()))

    def _publish(self) -> None:
        """The nodes the policy sees: ours, and each idle machine's offer (none while its
        owner is there)."""
        theirs = tuple(
            replace(n, cpus=0, memory_gb=0.0) if self.owner_here[n.name] else n
            for n in self.idle_nodes
        )
        self.state.set_nodes((*self.datacenter.nodes, *theirs))

    def _event(self, kind: int, data: Any, now: float) -> bool:
        if kind != OWNER:
            return super()._event(kind, data, now)
        name, here = data
        self.owner_here[name] = here
        self._publish()
        if here:
            for wid in [w for w in self.state.alive if self.state.workers[w].node == name]:
                self._preempt(wid, now)
        return True

    def _preempt(self, worker_id: str, now: float) -> None:
        worker = self.state.workers[worker_id]
        task = self.state.tasks.get(worker.task_id) if worker.task_id else None
        self.figures.preemptions += 1
        if task is not None and task.state in (TaskState.ASSIGNED, TaskState.RUNNING):
            self.figures.tasks_preempted += 1
            self.figures.lost_core_s += (now - task.assigned_at) * worker.flavor.cpus
        self._pending.pop(worker_id, None)
        self.feed(Exited(worker_id, ExitCause.PREEMPTED, "the owner came back"), now)

    def idle_figures(self) -> IdleFigures:
        """The figures of the run (once it has run)."""
        f = self.figures
        f.pilot_core_s = f.total_core_s = 0.0
        for task in self.state.tasks.values():
            if task.state is not TaskState.DONE or task.ended_at is None:
                continue
            worker = self.state.workers[task.worker_id]
            work = (task.ended_at - task.assigned_at) * worker.flavor.cpus
            f.total_core_s += work
            if worker.preemptible:
                f.pilot_core_s += work
        return f

    def work_by_hour(self, hours: int = 24) -> tuple[list[float], list[float], list[float]]:
        """Per hour of the run (once it has run): core-hours of completed tasks on our own
        nodes and on the idle machines, and the mean number of idle machines whose owner
        was there (for the plot of ``benchmarks/idle_cycles.py``)."""
        ours, idle = [0.0] * hours, [0.0] * hours
        for task in self.state.tasks.values():
            if task.state is not TaskState.DONE or task.ended_at is None:
                continue
            worker = self.state.workers[task.worker_id]
            into = idle if worker.preemptible else ours
            _spread(into, task.assigned_at, task.ended_at, worker.flavor.cpus / 3600)
        owners = [0.0] * hours
        for n in self.idle_nodes:
            for a, b in self._trace(n.name).busy:
                _spread(owners, a, b, 1 / 3600)
        return ours, idle, owners


def _spread(bins: list[float], start: float, end: float, per_second: float) -> None:
    """Add ``per_second`` x the seconds of [start, end) that fall in each hour's bin."""
    hour = int(start // 3600)
    while start < end and 0 <= hour < len(bins):
        edge = min(end, (hour + 1) * 3600.0)
        bins[hour] += (edge - start) * per_second
        start, hour = edge, hour + 1
