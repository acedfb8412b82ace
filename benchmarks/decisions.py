"""One policy decision on a large cluster: 10,000 waiting jobs and 1,000 workers.

The snapshot is made by the controller's core (``dacirco.core``) from a scripted trace, so the
view is the one the controller and the simulator hand a policy: ``workers`` workers started
(small, on as many 6-core nodes as hold them and a fifth more), nine in ten registered, the
registered ones given a job each, a tenth of those done again (idle since various times,
some past their grace period), the rest busy; then ``waiting`` requests queued (Poisson
arrivals on the default catalog, "fast" and "ultrafast"). The view is built beforehand,
then ``policy.decide(view)`` is timed alone, on a fresh view of the same state each time (no
cache of a view outlives one call). Goal: <= 5 ms per decision, for every shipped policy.
Prints the figures; it does not judge them.

    python benchmarks/decisions.py [--waiting 10000] [--workers 1000] [--repeats 50]
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import replace
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.core.machine import Core
from dacirco.core.state import CoreConfig, State
from dacirco.core.stimuli import Decide, Registered, Reported, Submitted
from dacirco.domain import FLAVORS, Node
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    PolicyParams,
    StartWorker,
    available,
    make_policy,
)
from dacirco.sim.models import Models
from dacirco.sim.run import core_job
from dacirco.sim.workload import make_jobs, requests_for

console = Console(width=120)
GOAL_MS = 5.0
STEPS = ("started", "downloaded", "transcoded", "uploaded")


class Script:
    """A stand-in policy that answers with the decisions it is given."""

    name = "script"

    def __init__(self) -> None:
        self.next = Decisions()

    def decide(self, view: ClusterView) -> Decisions:
        return self.next


def snapshot(waiting: int, workers: int, seed: int = 1) -> tuple[State, float]:
    """The core's state after the trace (see the module's docstring) and the view's time."""
    rng = random.Random(seed)
    small = FLAVORS["small"]
    nodes = -(-workers * small.cpus * 6 // 5 // 6)
    script = Script()
    config = CoreConfig(
        max_workers=workers + workers // 5, flavor="small", can_split=True, reuse=False
    )
    core = Core(config, script, log=False)
    core.state.set_nodes(tuple(Node(f"compute{i + 1}", 6, 16.0) for i in range(nodes)))
    registered = workers * 9 // 10
    jobs = make_jobs(requests_for("poisson", registered + waiting, seed), Models.build("vm"), seed)
    # The first jobs arrive while the workers boot; the queued ones over the last 80 s.
    early = [replace(j, arrival=40.0 + 10.0 * i / registered) for i, j in enumerate(jobs)]
    late = sorted(50.0 + 80.0 * rng.random() for _ in range(waiting))
    script.next = Decisions(start=tuple(StartWorker("small") for _ in range(workers)))
    core.handle(Decide(), 0.0)
    ids = list(core.state.workers)
    for t, wid in sorted((20.0 + 20.0 * rng.random(), w) for w in ids[:registered]):
        core.handle(Registered(wid, core.state.workers[wid].node or "", 2, 4.0), t)
    for j in early[:registered]:
        core.handle(Submitted(core_job(j)), j.arrival)
    script.next = Decisions(
        assign=tuple(Assign(j.id, w) for j, w in zip(early, ids[:registered], strict=False))
    )
    core.handle(Decide(), 50.0)
    # A tenth of the tasks done between 50 and 130 s, the queued jobs arriving meanwhile.
    events: list[tuple[float, int, object]] = []
    for i, wid in enumerate(ids[: registered // 10]):
        done = 50.0 + 80.0 * rng.random()
        task_id = core.state.workers[wid].task_id
        for k, step in enumerate(STEPS):
            at = 50.0 + (done - 50.0) * (k + 1) / len(STEPS)
            events.append((at, i, Reported(wid, task_id or "", step)))
    for i, (t, j) in enumerate(zip(late, jobs[registered:], strict=True)):
        events.append((t, registered + i, Submitted(core_job(replace(j, arrival=t)))))
    for t, _, stimulus in sorted(events, key=lambda e: (e[0], e[1])):
        core.handle(stimulus, t)  # type: ignore[arg-type]
    return core.state, 130.0


BUDGET_S = 1.0  # a policy whose first decision takes longer is timed once, and said so


def time_policy(
    name: str, state: State, now: float, repeats: int
) -> tuple[list[float], Decisions, bool]:
    """Seconds of ``decide`` for each repeat (after two warm-up calls), its decisions, and
    whether the first call was over ``BUDGET_S`` (then it is the only one timed)."""
    policy = make_policy(name, PolicyParams())
    times = []
    gc.collect()
    gc.disable()  # a collection of the whole heap is no part of a decision
    try:
        for i in range(repeats + 2):
            view = state.view(now)
            t0 = time.perf_counter()
            decisions = policy.decide(view)
            elapsed = time.perf_counter() - t0
            if i == 0 and elapsed > BUDGET_S:
                return [elapsed], decisions, True
            if i >= 2:
                times.append(elapsed)
    finally:
        gc.enable()
    return times, decisions, False


def main(
    waiting: Annotated[int, typer.Option(min=1, help="jobs waiting in the view")] = 10_000,
    workers: Annotated[int, typer.Option(min=10, help="workers in the view")] = 1_000,
    repeats: Annotated[int, typer.Option(min=1, help="timed decisions per policy")] = 50,
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    """Time one decision of every shipped policy on a view of WAITING jobs and WORKERS workers."""
    t0 = time.perf_counter()
    state, now = snapshot(waiting, workers, seed)
    view = state.view(now)
    console.print(
        f"view: {len(view.waiting):,} waiting, {len(view.workers):,} workers "
        f"({len(view.idle)} idle, {len(view.busy)} busy, {len(view.booting)} booting) on "
        f"{len(view.nodes)} nodes; built in {time.perf_counter() - t0:.1f} s"
    )
    table = Table(title=f"one decision ({waiting:,} waiting, {workers:,} workers)")
    for col in ("policy", "median (ms)", "p99 (ms)", "goal (ms)", "decisions"):
        table.add_column(col, justify="left" if col in ("policy", "decisions") else "right")
    for name in available():
        times, d, over = time_policy(name, state, now, repeats)
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        what = (
            f"{len(d.assign)} assign, {len(d.start)} start, {len(d.stop)} stop, "
            f"{len(d.split)} split" + (f" (over {BUDGET_S:g} s: timed once)" if over else "")
        )
        table.add_row(
            name,
            f"{1000 * statistics.median(times):.2f}",
            f"{1000 * p99:.2f}",
            f"{GOAL_MS:g}",
            what,
        )
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
