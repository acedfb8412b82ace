"""Priorities in the simulator: ``--priorities`` and ``--priority-aging``, the jobs they make,
and what the core does with them on a small loaded run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from dacirco.policies.base import ClusterView, Decisions, Policy, PolicyParams, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Level, Setup, by_priority
from dacirco.sim.models import Models
from dacirco.sim.options import SimOptions
from dacirco.sim.run import Simulation
from dacirco.sim.workload import (
    SimJob,
    draw_priorities,
    jobs_at_load,
    parse_priorities,
    requests_for,
)

runner = CliRunner()
MIX = "50:0.2,0:0.8"


# ---- the option ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("50:0.1,0:0.9", ((50, 0.1), (0, 0.9))),
        (" 50 : 1 , 0:3 ", ((50, 0.25), (0, 0.75))),  # shares normalised, spaces allowed
        ("-50:2", ((-50, 1.0),)),
        ("10:1,-10:1,0:2", ((10, 0.25), (-10, 0.25), (0, 0.5))),
    ],
)
def test_a_good_spec_gives_its_levels_with_shares_summing_to_one(spec, expected):
    got = parse_priorities(spec)
    assert [p for p, _ in got] == [p for p, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected])


@pytest.mark.parametrize(
    "spec",
    ["", "50", "50:", ":1", "x:1", "1.5:1", "51:1", "-51:1", "50:0", "50:-0.1", "50:nan",
     "50:inf", "50:abc", "50:1,50:2", "50:1,,0:1"],
)  # fmt: skip
def test_a_bad_spec_is_refused_naming_the_option(spec):
    with pytest.raises(ValueError, match="--priorities"):
        parse_priorities(spec)


def test_the_commands_refuse_a_bad_spec_or_aging_in_one_line_naming_the_option():
    for args, name in (
        (["simulate", "--priorities", "80:1"], "--priorities"),
        (["compare", "--priorities", "50:0"], "--priorities"),
        (["simulate", "--priority-aging", "-1"], "--priority-aging"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert name in result.output and "Traceback" not in result.output


def test_the_options_reach_the_setup_and_the_core():
    setup = SimOptions(jobs=20, priorities="5:1,0:1", priority_aging=7.5).setup()
    assert setup.priorities == ((5, 0.5), (0, 0.5))
    assert setup.config.priority_aging == 7.5
    jobs, _ = setup.workload("poisson", 3)
    sim = Simulation(setup.config, setup.datacenter, setup.models, jobs, 3)
    assert sim.core.state.config.priority_aging == 7.5
    sim.keep_finished = True  # the core's jobs are read once the run is over
    sim.run()
    assert {sim.state.jobs[j.id].priority for j in jobs} == {j.priority for j in jobs} == {0, 5}
    assert SimOptions().setup().priorities == ()


# ---- the jobs --------------------------------------------------------------------------------
def _workload(setup: Setup, seed: int) -> list[SimJob]:
    return setup.workload("poisson@0.9", seed)[0]


def test_the_same_seed_gives_the_same_priorities_and_about_the_shares():
    setup = SimOptions(jobs=2000, priorities="50:0.1,0:0.9").setup()
    first, again, other = _workload(setup, 4), _workload(setup, 4), _workload(setup, 5)
    assert first == again
    assert [j.priority for j in first] != [j.priority for j in other]
    share = sum(j.priority == 50 for j in first) / len(first)
    assert 0.08 < share < 0.12
    assert draw_priorities((), 3, 4) == [0, 0, 0]


def test_priorities_change_nothing_else_and_without_them_every_job_is_at_zero():
    plain = _workload(SimOptions(jobs=300).setup(), 2)
    marked = _workload(SimOptions(jobs=300, priorities=MIX).setup(), 2)
    assert {j.priority for j in plain} == {0}
    assert {j.priority for j in marked} == {0, 50}
    assert [replace(j, priority=0) for j in marked] == plain


def test_without_the_option_the_jobs_are_those_drawn_before_priorities_existed():
    # The jobs of seed 1 as the simulator drew them before this option (arrivals, movies,
    # bitrates, presets, noise): no generator gives a draw to priorities unless asked.
    jobs, _ = jobs_at_load(
        requests_for("poisson", 300, 1),
        Models.build("vm"),
        1,
        None,
        "small",
        DataCenter.reference().cpus,
        0.9,
    )
    text = ";".join(
        f"{j.id},{j.arrival!r},{j.movie.name},{j.bitrate},{j.speed},{j.noise!r}" for j in jobs
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "be9f8362e4acc17a936a90b262fc796c79d2625a0e5c79271ef52d2eea4dc2c5"


# ---- a loaded run ----------------------------------------------------------------------------
def _levels(policy: str, priorities: str | None, seed: int = 1) -> tuple[dict[int, Level], int]:
    """300 requests at rho = 1.0, whole jobs; the levels of the jobs as ``MIX`` marks them
    (the same jobs, whether or not this run has priorities), and how many completed."""
    setup = SimOptions(jobs=300, split=False, priorities=priorities).setup()
    marks = _workload_at(SimOptions(jobs=300, split=False, priorities=MIX).setup(), seed)
    result = setup.run(policy, _workload_at(setup, seed), seed)
    levels = {x.priority: x for x in by_priority(marks, result.run)}
    return levels, sum(x.completed + x.reused for x in levels.values())


def _workload_at(setup: Setup, seed: int) -> list[SimJob]:
    return setup.workload("poisson@1.0", seed)[0]


@pytest.mark.parametrize("policy", ["grace-period", "minimize-workers"])
def test_at_high_load_priority_50_has_the_lower_p95_and_every_job_completes(policy):
    levels, done = _levels(policy, MIX)
    assert done == 300
    assert levels[50].delay.p95 < levels[0].delay.p95
    assert levels[50].queueing.avg < levels[0].queueing.avg


@pytest.mark.parametrize("policy", ["grace-period", "minimize-workers", "right-size"])
def test_priority_50_jobs_wait_less_than_without_priorities_and_none_starves(policy):
    levels, done = _levels(policy, MIX)
    reference, _ = _levels(policy, None)
    assert done == 300
    assert levels[50].queueing.avg < reference[50].queueing.avg
    assert levels[50].queueing.avg < levels[0].queueing.avg
    assert levels[50].delay.avg < reference[50].delay.avg
    # Priority-0 jobs pay for it, boundedly: within 1.5 x their worst delay without.
    assert levels[0].delay.max < 1.5 * reference[0].delay.max


@dataclass
class Watching:
    """A policy that records whether each view's waiting jobs were in rank order."""

    inner: Policy
    name: str = ""
    out_of_order: list[float] = field(default_factory=list)

    def decide(self, view: ClusterView) -> Decisions:
        ranks = [j.ranked_at for j in view.waiting]
        if ranks != sorted(ranks):
            self.out_of_order.append(view.now)
        return self.inner.decide(view)


def test_every_view_lists_the_waiting_jobs_in_rank_order():
    setup = SimOptions(jobs=300, split=False, priorities=MIX).setup()
    jobs = _workload_at(setup, 1)
    policy = Watching(make_policy("grace-period", PolicyParams()), "grace-period")
    Simulation(setup.config, setup.datacenter, setup.models, jobs, 1, policy=policy).run()
    assert policy.out_of_order == []
