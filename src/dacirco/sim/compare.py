"""Policies x workloads x seeds: one simulated run each, the figures of ``analytics.figures``,
the seeds' spread, and the lower bound beside them.

The same seed gives the same jobs (arrivals, movies, noise draws) for every policy, so
policies are compared on identical traffic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dacirco.analytics.figures import Figures, Stats, figures, stats
from dacirco.analytics.run import JobSpan, RunData
from dacirco.policies import knobs
from dacirco.policies.base import Policy
from dacirco.sim.bound import Bound, lower_bound
from dacirco.sim.cluster import DataCenter
from dacirco.sim.ladder import LadderMix
from dacirco.sim.models import Models
from dacirco.sim.oracle import ORACLE, Oracle
from dacirco.sim.run import SimConfig, SimResult, Simulation
from dacirco.sim.workload import (
    CatalogShape,
    Priorities,
    SimJob,
    distinct,
    jobs_at_load,
    requests_for,
    with_repeats,
)


def parse_workload(spec: str) -> tuple[str, float | None]:
    """``poisson@0.6`` -> ("poisson", 0.6); ``bursty`` -> ("bursty", None)."""
    name, sep, load = spec.rpartition("@")
    if not sep:
        return spec, None
    try:
        rho = float(load)
    except ValueError:
        raise ValueError(f"workload {spec!r}: the load after @ must be a number") from None
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"workload {spec!r}: the load after @ must be > 0")
    return name, rho


@dataclass(frozen=True)
class Setup:
    """Everything a run needs but the policy, the workload and the seed."""

    datacenter: DataCenter
    config: SimConfig
    models: Models
    jobs: int = 500
    catalog: CatalogShape = field(default_factory=CatalogShape)
    load: float | None = None  # stretch arrivals to this offered load
    params: dict[str, float] = field(default_factory=dict)  # the generator's parameters
    priorities: Priorities = ()  # the jobs' mix of priorities; (): every job at 0
    repeats: float = 0.0  # share of requests that repeat an earlier one (with_repeats)
    ladder: LadderMix | None = None  # a share of the requests ask for a preset (sim.ladder)

    def workload(self, workload: str, seed: int) -> tuple[list[SimJob], float]:
        """The jobs of ``workload`` for ``seed``, and their offered load rho.

        ``NAME@RHO`` stretches that workload to offered load RHO (else ``load``, if set)."""
        name, load = parse_workload(workload)
        load = self.load if load is None else load
        requests = requests_for(name, self.jobs, seed, **self.params)
        requests = with_repeats(requests, self.repeats, seed)
        return jobs_at_load(
            requests,
            self.models,
            seed,
            self.catalog,
            self.config.flavor,
            self.datacenter.cpus,
            load,
            self.priorities,
            self.ladder,
        )

    def bound(self, jobs: Sequence[SimJob]) -> Bound:
        """The lower bound of ``jobs``: with reuse, of the ones that need work."""
        needed = distinct(jobs) if self.config.reuse else list(jobs)
        return lower_bound(needed, self.models, self.datacenter, self.config.split)

    def run(
        self,
        algorithm: str,
        jobs: Sequence[SimJob],
        seed: int,
        *,
        log: bool = False,
        meta: dict | None = None,
        policy: Policy | None = None,
    ) -> SimResult:
        """``algorithm`` on ``jobs``; ``policy``: that policy's object (one built with other
        knobs than its registered defaults, ``benchmarks/frontier.py``), else the registry's."""
        config = replace(
            self.config,
            algorithm=algorithm,
            policy_knobs=knobs.of_policy(algorithm, self.config.policy_knobs),
        )
        if algorithm == ORACLE:  # it is given the whole workload: the simulator alone has it
            c = self.config
            policy = Oracle(jobs, self.models, split=c.split, reuse=c.reuse, flavor=c.flavor)
        sim = Simulation(
            config, self.datacenter, self.models, jobs, seed, policy=policy, log=log, meta=meta
        )
        return sim.run()


@dataclass(frozen=True)
class Level:
    """The jobs of one priority in a run: how many, how many completed, their delay and their
    queueing (of the completed ones)."""

    priority: int
    jobs: int
    completed: int
    delay: Stats
    queueing: Stats
    reused: int = 0  # completed with an identical job's output (not in the figures)


def by_priority(jobs: Sequence[SimJob], run: RunData) -> list[Level]:
    """The delay of ``run``'s completed jobs per priority of ``jobs`` (highest first). The
    priorities are looked up by job id, so a run of the same jobs without priorities can be
    broken down by the priorities they have in ``jobs``."""
    priority = {j.id: j.priority for j in jobs}
    groups: dict[int, list[JobSpan]] = {}
    for span in run.jobs:
        groups.setdefault(priority.get(span.job_id, 0), []).append(span)
    levels = []
    for level, group in sorted(groups.items(), reverse=True):
        done = [s for s in group if s.state == "Completed" and s.uploaded is not None]
        reused = sum(1 for s in done if s.reused_from is not None)
        done = [s for s in done if s.reused_from is None]  # reused: no work, counted apart
        delay = stats(s.delay for s in done)
        queueing = stats(None if s.assigned is None else s.assigned - s.received for s in done)
        levels.append(Level(level, len(group), len(done), delay, queueing, reused))
    return levels


@dataclass
class Cell:
    """One policy on one workload, over the seeds."""

    policy: str
    workload: str
    figures: list[Figures] = field(default_factory=list)
    rho: list[float] = field(default_factory=list)


@dataclass
class Comparison:
    cells: list[Cell]
    bounds: dict[str, list[Bound]]  # workload -> one per seed
    rho: dict[str, list[float]]


def compare(
    setup: Setup,
    policies: Sequence[str],
    workloads: Sequence[str],
    seeds: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    cells = {(p, w): Cell(p, w) for w in workloads for p in policies}
    bounds: dict[str, list[Bound]] = {w: [] for w in workloads}
    rhos: dict[str, list[float]] = {w: [] for w in workloads}
    for w in workloads:
        for seed in seeds:
            jobs, rho = setup.workload(w, seed)
            bounds[w].append(setup.bound(jobs))
            rhos[w].append(rho)
            for p in policies:
                result = setup.run(p, jobs, seed)
                cells[(p, w)].figures.append(figures(result.run))
                cells[(p, w)].rho.append(rho)
                if progress is not None:
                    progress(f"{p} on {w}, seed {seed}")
    return Comparison(list(cells.values()), bounds, rhos)


# ---- the table ---------------------------------------------------------------------------
COLUMNS: tuple[tuple[str, Callable[[Figures], float], str], ...] = (
    ("delay avg (s)", lambda f: f.delay.avg, "{:.1f}"),
    ("delay p95 (s)", lambda f: f.delay.p95, "{:.1f}"),
    ("reserved core·s", lambda f: f.reserved_core_seconds, "{:.0f}"),
    ("idle core·s", lambda f: f.idle_core_seconds, "{:.0f}"),
    ("CPU util avg", lambda f: 100 * f.cpu_util.avg, "{:.1f}%"),
    ("CPU util p95", lambda f: 100 * f.cpu_util.p95, "{:.1f}%"),
    ("RAM util avg", lambda f: 100 * f.ram_util.avg, "{:.1f}%"),
    ("RAM util p95", lambda f: 100 * f.ram_util.p95, "{:.1f}%"),
)
BOUND_COLUMNS: dict[str, Callable[[Bound], float]] = {
    "delay avg (s)": lambda b: b.delay_avg,
    "delay p95 (s)": lambda b: b.delay_p95,
    "reserved core·s": lambda b: b.reserved_core_seconds,
    "idle core·s": lambda b: 0.0,
}


def spread(values: Sequence[float], fmt: str) -> str:
    """``mean ± sd`` over the seeds (just the value with one seed); ``—`` when undefined."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "—"
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return fmt.format(mean)
    sd = statistics.stdev(vals)
    if sd == 0:
        return fmt.format(mean)
    return f"{fmt.format(mean)}±{fmt.format(sd).rstrip('%')}"


def rows(result: Comparison) -> list[list[str]]:
    """Header first; per workload, every policy then the lower bound."""
    table = [["workload", "rho", "policy", "done", *[c[0] for c in COLUMNS]]]
    for w, bounds in result.bounds.items():
        rho = spread(result.rho[w], "{:.2f}")
        for cell in (c for c in result.cells if c.workload == w):
            done = f"{sum(f.completed for f in cell.figures)}/{sum(f.jobs for f in cell.figures)}"
            values = [spread([get(f) for f in cell.figures], fmt) for _, get, fmt in COLUMNS]
            table.append([w, rho, cell.policy, done, *values])
        bound_values = [
            spread([BOUND_COLUMNS[name](b) for b in bounds], fmt) if name in BOUND_COLUMNS else "—"
            for name, _, fmt in COLUMNS
        ]
        table.append([w, rho, "lower bound", "", *bound_values])
    return table


def csv_rows(
    result: Comparison, seeds: Sequence[int], policy_knobs: knobs.Knobs = ()
) -> list[list[object]]:
    """Every run on its own line (for spreadsheets and notebooks); the last column, the knobs
    its policy took (``NAME=VALUE`` separated by ``;``, empty when it took none)."""
    head = ["workload", "policy", "seed", "rho", *[c[0] for c in COLUMNS], "knobs"]
    out: list[list[object]] = [head]
    for cell in result.cells:
        took = ";".join(f"{k}={v:g}" for k, v in knobs.of_policy(cell.policy, policy_knobs))
        for seed, f, rho in zip(seeds, cell.figures, cell.rho, strict=True):
            values = [get(f) for _, get, _ in COLUMNS]
            out.append([cell.workload, cell.policy, seed, rho, *values, took])
    for w, bounds in result.bounds.items():
        for seed, b, rho in zip(seeds, bounds, result.rho[w], strict=True):
            values = [BOUND_COLUMNS[n](b) if n in BOUND_COLUMNS else "" for n, _, _ in COLUMNS]
            out.append([w, "lower bound", seed, rho, *values, ""])
    return out
