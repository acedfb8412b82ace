"""A policy's knobs set from outside (``--policy-knob NAME=VALUE``): parsed and checked with
a message naming what is wrong, applied to the policy the service and the simulator run, and
each policy of a comparison taking its own."""

from __future__ import annotations

import csv
import re

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from dacirco.policies import knobs
from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import PolicyParams, Split, make_policy
from dacirco.service import ConfigError, recorded_options, unread_options, validate
from dacirco.service_config import ServiceConfig

from .adaptive_views import idle, job, stats, view

runner = CliRunner()


def test_knobs_parse_in_order_the_last_value_of_a_name_winning():
    assert knobs.parse(["linger_boots=2", " wait_share = 0.1 ", "linger_boots=3"]) == (
        ("wait_share", 0.1),
        ("linger_boots", 3.0),
    )
    assert knobs.parse([]) == ()


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["linger_boots"], "'linger_boots': expected NAME=VALUE"),
        (["=2"], "'=2': expected NAME=VALUE"),
        (["linger_boots="], "expected NAME=VALUE"),
        (["linger_boots=two"], "linger_boots: 'two' is not a number"),
        (["linger_boots=1=2"], "linger_boots: '1=2' is not a number"),
        (["max_chunks=1_0"], "max_chunks: '1_0' is not a number"),
        (["wait_share=inf"], "wait_share: 'inf' is not a number"),
        (["wait_share=nan"], "wait_share: 'nan' is not a number"),
        (["wait_share=1e999"], "wait_share: '1e999' is not a number"),
    ],
)
def test_a_value_that_is_not_a_plain_number_is_refused(texts, message):
    with pytest.raises(ValueError, match=message):
        knobs.parse(texts)


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        (("max_chunks", 1e20), "max_chunks: 1e+20 is out of its range, 1 to 16"),
        (("max_chunks", 2.5), "max_chunks: 2.5 must be a whole number"),
        (("wait_share", 0.0), "wait_share: 0 is out of its range, 0.01 to 10"),
        (("linger_boots", -1.0), "linger_boots: -1 is out of its range, 0 to 100"),
        (("default_rate", 1e308), "default_rate: 1e+308 is out of its range, 0.001 to 100"),
        (("speed", 2.0), "policy 'adaptive' has no knob 'speed'; its knobs: burst_z (0.5 to 10), "),
        (("name", 2.0), "policy 'adaptive' has no knob 'name'"),
        (("_recent", 2.0), "policy 'adaptive' has no knob '_recent'"),
    ],
)
def test_a_knob_out_of_its_range_or_not_the_policys_is_refused(knob, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_policy("adaptive", PolicyParams(knobs=(knob,)))


def test_a_policys_knobs_are_those_its_class_lists_and_whole_ones_stay_whole():
    own = knobs.knobs_of(Adaptive())
    assert {"wait_share", "linger_boots", "max_chunks", "max_idle_time"} <= set(own)
    assert own["max_chunks"].whole and not own["linger_boots"].whole
    assert {"keep_factor", "linger", "max_chunks"} <= set(knobs.knobs_of(make_policy("right-size")))
    # Policies that list none have none (their options are the service's own flags).
    assert knobs.knobs_of(make_policy("grace-period")) == {}
    assert knobs.knobs_of(make_policy("minimize-workers")) == {}
    policy = make_policy("adaptive", PolicyParams(knobs=(("max_chunks", 3.0),)))
    assert policy.max_chunks == 3 and isinstance(policy.max_chunks, int)  # type: ignore[attr-defined]
    # A knob's ends are allowed: idle workers beyond the pool go at once.
    edge = make_policy("adaptive", PolicyParams(knobs=(("linger_boots", 0.0),)))
    assert edge.linger_boots == 0.0  # type: ignore[attr-defined]
    with pytest.raises(
        ValueError, match=r"policy 'minimize-workers' has no knob 'x'; its knobs: none"
    ):
        make_policy("minimize-workers", PolicyParams(knobs=(("x", 1.0),)))


def test_a_knob_changes_what_the_policy_decides():
    # A 60 s job and eight idle workers: adaptive splits it; with max_chunks=1, never.
    seen = view([job(1, duration=60.0)], [idle(i) for i in range(8)], stats(0.05))
    split = [d for d in make_policy("adaptive").decide(seen).split if isinstance(d, Split)]
    assert split and split[0].chunks > 1
    whole = make_policy("adaptive", PolicyParams(knobs=(("max_chunks", 1.0),)))
    decided = whole.decide(seen)
    assert not decided.split and [a.job_id for a in decided.assign] == ["j1"]


def test_the_service_runs_the_policy_with_its_knobs_or_says_what_is_wrong():
    config = ServiceConfig.of(policy_knob=("linger_boots=2", "max_chunks=4", "linger_boots=3"))
    policy = validate(config)
    assert (policy.linger_boots, policy.max_chunks) == (3.0, 4)  # type: ignore[attr-defined]
    # The event log's config records the knobs as the policy took them.
    assert recorded_options(config)["policy_knob"] == {"linger_boots": 3.0, "max_chunks": 4.0}
    for knob, message in [
        ("speed=2", "--policy-knob policy 'adaptive' has no knob 'speed'; its knobs: burst_z"),
        ("linger_boots=soon", "--policy-knob linger_boots: 'soon' is not a number"),
        ("max_chunks=1.5", "--policy-knob max_chunks: 1.5 must be a whole number"),
        ("max_chunks=100000", "--policy-knob max_chunks: 100000 is out of its range, 1 to 16"),
    ]:
        with pytest.raises(ConfigError) as info:
            validate(ServiceConfig.of(policy_knob=(knob,)))
        assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(ConfigError, match="policy 'grace-period' has no knob 'max_idle_time'"):
        validate(ServiceConfig.of(algorithm="grace-period", policy_knob=("max_idle_time=9",)))


def test_a_knob_of_an_options_name_does_not_hide_that_the_option_is_unread():
    # adaptive does not read --max-idle-time; its own max_idle_time knob is not that option.
    config = ServiceConfig.of(max_idle_time=30.0, policy_knob=("max_idle_time=30",))
    [line] = unread_options(config, validate(config))
    assert line.startswith("--max-idle-time 30.0 is not read by the adaptive policy")


@pytest.mark.parametrize("command", ["serve", "controller"])
def test_the_service_commands_refuse_a_bad_knob_in_one_line_before_they_start(command, tmp_path):
    args = [command, "--data-dir", str(tmp_path), "--port", "0", "--policy-knob", "speed=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "error: --policy-knob policy 'adaptive' has no knob 'speed'" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def _reserved(output: str) -> int:
    """The reserved core-seconds simulate printed for the policy."""
    line = next(ln for ln in output.splitlines() if "reserved core" in ln)
    return int(re.findall(r"\b\d+\b", line)[0])


def _figures(output: str, name: str) -> str:
    """The row of policy ``name`` in compare's table."""
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_simulate_and_compare_run_the_policies_with_their_own_knobs(tmp_path):
    base = ["simulate", "--policy", "adaptive", "-n", "150", "--catalog", "short",
            "--workload", "diurnal"]  # fmt: skip
    plain = runner.invoke(app, base)
    lingering = runner.invoke(app, [*base, "--policy-knob", "linger_boots=4"])
    assert plain.exit_code == lingering.exit_code == 0, lingering.output
    assert "adaptive (knobs linger_boots=4) on diurnal" in lingering.output
    # Idle workers kept four boots rather than one: more core-seconds reserved.
    assert _reserved(lingering.output) > _reserved(plain.output)
    # compare: adaptive takes the knob, grace-period (which has none of that name) runs as is.
    plot = str(tmp_path / "p.png")
    args = ["compare", "--policies", "adaptive,grace-period", "--workloads", "poisson",
            "--seeds", "1", "-n", "60", "--no-oracle", "--plot", plot]  # fmt: skip
    csv_file = tmp_path / "runs.csv"
    a = runner.invoke(app, [*args, "--policy-knob", "linger_boots=4", "--csv", str(csv_file)])
    b = runner.invoke(app, args)
    assert a.exit_code == b.exit_code == 0, a.output
    assert "(knobs adaptive linger_boots=4)" in a.output
    # Every run's line says the knobs its policy took.
    with csv_file.open() as f:
        lines = list(csv.DictReader(f))
    assert {(r["policy"], r["knobs"]) for r in lines} == {
        ("adaptive", "linger_boots=4"),
        ("grace-period", ""),
        ("lower bound", ""),
    }
    assert _figures(a.output, "grace-period") == _figures(b.output, "grace-period")
    assert _figures(a.output, "adaptive") != _figures(b.output, "adaptive")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--policy", "grace-period", "--policy-knob", "linger_boots=2"],
         "policy 'grace-period' has no knob 'linger_boots'; its knobs: none"),
        (["simulate", "--policy", "adaptive", "--policy-knob", "linger_boots=2",
          "--policy-knob", "speed=1"], "policy 'adaptive' has no knob 'speed'; its knobs: burst_z"),
        (["simulate", "--policy", "oracle", "--policy-knob", "linger_boots=2"],
         "the oracle takes no knobs"),
        (["compare", "--policies", "oracle", "--policy-knob", "linger_boots=2"],
         "the oracle takes no knobs"),
        (["compare", "--policies", "adaptive,minimize-workers", "--policy-knob", "speed=2"],
         "none of adaptive, minimize-workers has the knob 'speed'"),
        (["simulate", "--policy", "adaptive", "--policy-knob", "max_chunks=0.5"],
         "max_chunks: 0.5 is out of its range, 1 to 16"),
        (["simulate", "--policy", "adaptive", "--policy-knob", "max_chunks=1e20"],
         "max_chunks: 1e+20 is out of its range, 1 to 16"),
        (["simulate", "--policy-knob", "max_idle_time"], "expected NAME=VALUE"),
    ],
)  # fmt: skip
def test_the_simulator_refuses_a_bad_knob_in_one_line(args, message):
    result = runner.invoke(app, [*args, "-n", "10"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
