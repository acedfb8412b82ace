"""The published peers' knobs (``--policy-knob NAME=VALUE``, ``policies/knobs.py``): each peer
lists its own numbers, whole ones for its ``int`` fields; at either end of its range a knob
leaves the policy running every job to completion; a value past an end, or not whole for a
whole knob, is refused with a message naming the knob; a knob set reaches the policy."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dacirco.analytics.figures import figures
from dacirco.policies import knobs
from dacirco.policies.base import PolicyParams, available, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape

# Each peer's knobs, and the whole ones among them (its ``int`` fields).
PEERS: dict[str, tuple[set[str], set[str]]] = {
    "hybrid-histogram": (
        {
            "bin_seconds",
            "bins",
            "head_percentile",
            "tail_percentile",
            "margin",
            "cv_threshold",
            "min_samples",
            "fallback_keep_alive",
            "default_boot",
        },
        {"bins", "min_samples"},
    ),
    "cvss": ({"upper", "lower", "cycle", "split_work", "max_chunks"}, {"max_chunks"}),
    "covt": ({"target_wait", "target_share"}, set()),
    "mpc": (
        {"step", "horizon", "delay_weight", "deferrable_weight", "robust", "trend_span"},
        {"horizon"},
    ),
    "adaptive-grace": ({"step", "step_every", "busy_high"}, set()),
    "hpa": (
        {
            "target",
            "tolerance",
            "sync_period",
            "downscale_window",
            "min_replicas",
            "up_percent",
            "up_pods",
        },
        {"min_replicas", "up_pods"},
    ),
    "keda-scaledjob": ({"polling_interval", "max_replica_count"}, {"max_replica_count"}),
    "queue-threshold": ({"threshold"}, {"threshold"}),
    "priority-dynamic": ({"aging"}, set()),
}


def _ends() -> list[tuple[str, str, float]]:
    """(policy, knob, value) for both ends of every knob of every peer."""
    out = []
    for name in PEERS:
        for knob, spec in sorted(knobs.knobs_of(make_policy(name)).items()):
            out += [(name, knob, spec.low), (name, knob, spec.high)]
    return out


@pytest.mark.parametrize("name", sorted(PEERS))
def test_each_peer_lists_its_own_numbers_and_whole_ones_are_its_int_fields(name: str) -> None:
    expected, whole = PEERS[name]
    policy = make_policy(name)
    own = knobs.knobs_of(policy)
    assert set(own) == expected
    assert {k for k, spec in own.items() if spec.whole} == whole
    ints = {f.name for f in dataclasses.fields(policy) if f.init and f.type in (int, "int")}  # type: ignore[arg-type]
    assert ints == whole
    # Neither what the service's own flags set nor the policy's name is a knob.
    assert not {"flavor", "name", "max_idle_time"} & set(own)
    for spec in own.values():
        assert spec.low < spec.high


# A small data center and a burst of jobs (long ones split where a policy splits them), a
# fifth of them deferrable (mpc serves them last): every end of every knob is a run of this.
DC = DataCenter.uniform(2, 8, 32.0)
SETUP = Setup(
    DC,
    SimConfig(split=True),
    Models.build("vm"),
    jobs=24,
    catalog=CatalogShape.named("default"),
    load=0.7,
    priorities=((0, 0.8), (-10, 0.2)),
)
JOBS, _ = SETUP.workload("bursty", 5)
# The ends that keep idle workers longer than an hour after the last job.
LINGERING = {
    ("hybrid-histogram", "bin_seconds", 3600.0),  # keep-alive: to the tail's bin's end, +10 %
    ("cvss", "cycle", 86400.0),  # an idle worker goes after a whole cycle
    ("hpa", "downscale_window", 3600.0),  # the last worker goes a window after the load
}


@pytest.mark.parametrize(("name", "knob", "value"), _ends())
def test_a_peer_runs_every_job_at_either_end_of_each_knob(
    name: str, knob: str, value: float
) -> None:
    policy = make_policy(name, PolicyParams(knobs=((knob, value),)))
    assert getattr(policy, knob) == value
    result = SETUP.run(name, JOBS, 5, policy=policy)
    f = figures(result.run)
    assert f.completed + f.reused == len(JOBS), (name, knob, value, result.stats.cut)
    assert result.stats.refused == {}, (name, knob, value, result.stats.refused)
    # Every worker is stopped in the end, but where the knob keeps idle ones for hours: the
    # run is then cut an hour (the simulator's linger) after the last job, as the controller
    # stops them on exit.
    cut = "linger" if (name, knob, value) in LINGERING else ""
    assert result.stats.cut == cut, (name, knob, value, result.stats.cut)


@pytest.mark.parametrize(
    ("name", "knob", "message"),
    [
        ("hybrid-histogram", ("bins", 0.0), "bins: 0 is out of its range, 1 to 10000"),
        ("hybrid-histogram", ("min_samples", 2.5), "min_samples: 2.5 must be a whole number"),
        (
            "hybrid-histogram",
            ("head_percentile", 50.0),
            "head_percentile: 50 is out of its range, 0 to 49",
        ),
        (
            "hybrid-histogram",
            ("tail_percentile", 50.0),
            "tail_percentile: 50 is out of its range, 51 to 100",
        ),
        ("cvss", ("upper", 1.5), "upper: 1.5 is out of its range, 0 to 1"),
        ("cvss", ("max_chunks", 3.5), "max_chunks: 3.5 must be a whole number"),
        ("covt", ("target_share", 0.0), "target_share: 0 is out of its range, 0.01 to 1"),
        ("covt", ("target_wait", -1.0), "target_wait: -1 is out of its range, 0 to 3600"),
        ("mpc", ("horizon", 0.0), "horizon: 0 is out of its range, 1 to 48"),
        ("mpc", ("horizon", 1e9), "horizon: 1e+09 is out of its range, 1 to 48"),
        ("mpc", ("horizon", 12.5), "horizon: 12.5 must be a whole number"),
        ("mpc", ("robust", -1.0), "robust: -1 is out of its range, 0 to 10"),
        ("adaptive-grace", ("busy_high", 1.5), "busy_high: 1.5 is out of its range, 0 to 1"),
        ("adaptive-grace", ("step", -5.0), "step: -5 is out of its range, 0 to 3600"),
        ("hpa", ("target", 0.0), "target: 0 is out of its range, 0.01 to 1"),
        ("hpa", ("up_pods", 0.0), "up_pods: 0 is out of its range, 1 to 100"),
        ("hpa", ("min_replicas", 1.5), "min_replicas: 1.5 must be a whole number"),
        (
            "keda-scaledjob",
            ("polling_interval", 0.0),
            "polling_interval: 0 is out of its range, 1 to 600",
        ),
        (
            "keda-scaledjob",
            ("max_replica_count", 0.0),
            "max_replica_count: 0 is out of its range, 1 to 10000",
        ),
        ("queue-threshold", ("threshold", 2.5), "threshold: 2.5 must be a whole number"),
        ("queue-threshold", ("threshold", -1.0), "threshold: -1 is out of its range, 0 to 10000"),
        ("priority-dynamic", ("aging", 0.0), "aging: 0 is out of its range, 0.1 to 86400"),
        (
            "priority-dynamic",
            ("largest_first", 1.0),
            "has no knob 'largest_first'; its knobs: aging (0.1 to 86400)",
        ),
        ("hpa", ("scale_to_zero", 0.0), "policy 'hpa' has no knob 'scale_to_zero'"),
        (
            "queue-threshold",
            ("max_idle_time", 5.0),
            "policy 'queue-threshold' has no knob 'max_idle_time'",
        ),
        ("mpc", ("flavor", 1.0), "policy 'mpc' has no knob 'flavor'"),
    ],
)
def test_a_knob_out_of_its_range_or_not_whole_is_refused_naming_it(
    name: str, knob: tuple[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_policy(name, PolicyParams(knobs=(knob,)))


def test_a_knob_set_reaches_the_policy_and_a_whole_one_stays_whole() -> None:
    policy = make_policy("queue-threshold", PolicyParams(knobs=(("threshold", 5.0),)))
    assert policy.threshold == 5 and isinstance(policy.threshold, int)  # type: ignore[attr-defined]
    hpa = make_policy("hpa", PolicyParams(knobs=(("up_pods", 2.0), ("target", 0.5))))
    assert (hpa.up_pods, hpa.target) == (2, 0.5) and isinstance(hpa.up_pods, int)  # type: ignore[attr-defined]
    # The service's own options still come from it, next to the knobs.
    params = PolicyParams(max_idle_time=7.0, flavor="medium", knobs=(("aging", 3.0),))
    dynamic = make_policy("priority-dynamic", params)
    assert (dynamic.aging, dynamic.max_idle_time, dynamic.flavor) == (3.0, 7.0, "medium")  # type: ignore[attr-defined]
    # The others keep their defaults.
    plain = make_policy("mpc", PolicyParams(knobs=(("horizon", 3.0),)))
    assert plain == dataclasses.replace(make_policy("mpc"), horizon=3)  # type: ignore[type-var]


def test_a_peer_built_again_with_a_knob_starts_afresh_not_with_the_first_ones_memory() -> None:
    policy = make_policy("adaptive-grace")
    policy.memory.grace = 99.0  # type: ignore[attr-defined]  # as a run would leave it
    tuned = knobs.apply(policy, (("step", 2.0),), "adaptive-grace")
    assert tuned.step == 2.0  # type: ignore[attr-defined]
    assert tuned.memory is not policy.memory and tuned.memory.grace is None  # type: ignore[attr-defined]


def test_docs_list_each_peers_knobs_as_its_code_has_them() -> None:
    own = ("adaptive", "grace-period", "minimize-workers", "right-size")
    peers = [p for p in available() if p not in own]
    assert set(PEERS) <= set(peers)
    table = knobs.markdown(peers)
    assert (
        "| cvss | `upper` 0.2 (0 to 1), " in table and "`split_work` 200 (1 to 1,000,000)" in table
    )
    docs = (Path(__file__).parents[2] / "docs" / "policies.md").read_text(encoding="utf-8")
    assert table in docs, "docs/policies.md: run benchmarks/policies.py (it writes the table)"
