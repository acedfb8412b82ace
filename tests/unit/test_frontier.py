"""benchmarks/frontier.py: the knobs it parses (a clear error for a bad one), the frontier it
marks, and its defaults' row being the registered adaptive's run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer

from dacirco.analytics.figures import figures
from dacirco.policies.base import PolicyParams, make_policy

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import default_policy as dp
import frontier as fr


def test_a_knob_gives_one_setting_per_value_and_whole_knobs_stay_whole():
    assert fr.parse_knob("wait_share=0.1,0.2") == [
        (("wait_share", 0.1),),
        (("wait_share", 0.2),),
    ]
    [setting] = fr.parse_knob("max_chunks=4")
    policy = fr.knobs.apply(fr.make_policy("adaptive"), setting, "adaptive")
    assert policy.max_chunks == 4 and isinstance(policy.max_chunks, int)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wait_share", "expected NAME=V1,V2"),
        ("wait_share=", "expected NAME=V1,V2"),
        ("speed=2", "policy 'adaptive' has no knob 'speed'; its knobs: burst_z "),
        ("name=2", "policy 'adaptive' has no knob 'name'"),
        ("wait_share=0.1,fast", "wait_share: 'fast' is not a number"),
        ("linger_boots=-1", "linger_boots: -1 is out of its range, 0 to 100"),
        ("max_chunks=2.5", "max_chunks: 2.5 must be a whole number"),
        ("wait_share=nan", "wait_share: 'nan' is not a number"),
        ("max_chunks=1000", "max_chunks: 1000 is out of its range, 1 to 16"),
    ],
)
def test_a_bad_knob_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(typer.BadParameter, match=message):
        fr.parse_knob(text)


def test_the_frontier_holds_the_settings_no_other_beats_on_both_figures():
    a = fr.Point((), 0.9, 0.76, 0.92)
    b = fr.Point((("linger_boots", 2),), 0.8, 0.71, 0.98)
    c = fr.Point((("wait_share", 0.05),), 0.8, 0.72, 0.99)  # b is faster and leaner
    d = fr.Point((("max_chunks", 4),), 0.9, 0.80, 0.84)
    assert fr.frontier([a, b, c, d]) == {a.setting, b.setting, d.setting}
    assert not b.meets(dp.Cell("x", "diurnal", "short"))
    assert fr.Point((), 0.9, 0.69, 0.99).meets(dp.Cell("x", "diurnal", "short"))
    assert not fr.Point((), 0.9, 0.69, 0.99).meets(dp.Cell("x", "poisson@0.3", p95_target=0.5))


def _direct(cell: dp.Cell, name: str, seed: int, jobs: int, knobs=()) -> tuple[float, ...]:
    """A run made without the benchmarks' code: the policy built here, with ``knobs``."""
    setup = cell.setup(jobs)
    work, _ = setup.workload(cell.workload, seed)
    params = PolicyParams(setup.config.max_idle_time, setup.config.flavor, tuple(knobs))
    f = figures(setup.run(name, work, seed, policy=make_policy(name, params)).run)
    return f.delay.avg, f.delay.p95, f.reserved_core_seconds


def test_the_defaults_run_is_the_registered_adaptive_run():
    cell = fr.find_cell("short diurnal")
    ours = fr.run_one((cell, dp.NEW, (), 4, 60))
    assert ours == _direct(cell, dp.NEW, 4, 60)
    moved = fr.run_one((cell, dp.NEW, (("max_chunks", 1),), 4, 60))
    assert moved == _direct(cell, dp.NEW, 4, 60, (("max_chunks", 1),))
    assert moved != ours  # the knob reaches the policy: whole jobs only


def test_an_unknown_cell_names_the_known_ones():
    with pytest.raises(typer.BadParameter, match=r"unknown cell 'nowhere': one of .*short diurnal"):
        fr.find_cell("nowhere")


def test_another_policys_knobs_are_swept_at_half_and_twice_their_defaults_within_range():
    assert fr.default_sweep(dp.NEW) == list(fr.SWEEP)
    sweep = fr.default_sweep("cvss")  # upper 0.2, lower 0.05, cycle 30, split_work 200, ...
    assert "upper=0.1,0.4" in sweep and "cycle=15,60" in sweep
    assert "max_chunks=4,16" in sweep  # 8: twice is 16, the range's end
    # A whole knob stays whole; one at its range's end is only tried inside it.
    assert fr.default_sweep("queue-threshold") == ["threshold=1,4"]
    assert "target_share=0.475,1" in fr.default_sweep("covt")  # 1.9 is past the end, 1


def test_a_peers_knob_is_checked_against_that_peer_not_adaptive():
    assert fr.parse_knob("threshold=5", "queue-threshold") == [(("threshold", 5.0),)]
    with pytest.raises(
        typer.BadParameter, match="has no knob 'wait_share'; its knobs: threshold \\(0 to 10000\\)"
    ):
        fr.parse_knob("wait_share=0.1", "queue-threshold")
    with pytest.raises(typer.BadParameter, match=r"threshold: 2\.5 must be a whole number"):
        fr.parse_knob("threshold=2.5", "queue-threshold")


def test_only_a_registered_policy_with_knobs_is_swept():
    assert fr.find_policy("cvss") == "cvss"
    for name in ("grace-period", "nowhere"):
        with pytest.raises(
            typer.BadParameter, match=f"'{name}' is not a policy with knobs: one of .*cvss"
        ):
            fr.find_policy(name)


def test_a_peers_setting_reaches_the_peer():
    cell = fr.find_cell("short diurnal")
    ours = fr.run_one((cell, "queue-threshold", (), 4, 60))
    assert ours == _direct(cell, "queue-threshold", 4, 60)
    moved = fr.run_one((cell, "queue-threshold", (("threshold", 0),), 4, 60))
    assert moved == _direct(cell, "queue-threshold", 4, 60, (("threshold", 0),))
    assert moved != ours  # a worker for every job no idle one takes


def test_a_grid_gives_adaptive_its_knobs_and_every_other_policy_its_defaults():
    cells = [fr.find_cell("short diurnal")]
    set_ = (("max_chunks", 3.0),)  # cvss has a knob of that name too
    tasks = dp.tasks_for(cells, [dp.NEW, dp.GRACE, "cvss"], range(1, 3), 50, set_)
    assert len(tasks) == 6
    assert {t[4] for t in tasks if t[1] == dp.NEW} == {set_}
    assert {t[4] for t in tasks if t[1] != dp.NEW} == {()}
