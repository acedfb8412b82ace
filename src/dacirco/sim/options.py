"""The options ``dacirco simulate`` and ``dacirco compare`` share, as one object: the data
center, the policies' knobs, the models and the workload's shape.

Each default is written once: the policies' knobs are ``SimConfig``'s, the data center's the
reference's, the workload's ``Setup``'s and the catalog's ``CatalogShape``'s. ``setup()``
checks them and builds the ``Setup`` every run starts from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dacirco.domain import FLAVORS
from dacirco.policies import knobs
from dacirco.sim.calibrate import Calibration
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.ladder import LadderMix
from dacirco.sim.models import Models, check_runtime
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape, parse_priorities


def _defaults(config: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(config)}


_SIM, _SETUP, _CATALOG = _defaults(SimConfig), _defaults(Setup), _defaults(CatalogShape)
_LADDER = _defaults(LadderMix)
_NODE = DataCenter.reference().nodes[0]
# The fields of SimConfig these options set (the policy is each run's own).
KNOBS = (
    "flavor",
    "max_workers",
    "max_idle_time",
    "call_interval",
    "runtime",
    "exact",
    "split",
    "priority_aging",
    "reuse",
)


@dataclass(frozen=True)
class SimOptions:
    jobs: int = _SETUP["jobs"]  # requests per run
    load: float | None = _SETUP["load"]  # stretch arrivals to this offered load rho
    params: Mapping[str, float] = field(default_factory=dict)  # the generator's parameters
    nodes: int | None = None  # None: the reference data center
    cores: int = _NODE.cpus  # per node, with nodes
    memory: float = _NODE.memory_gb  # GB per node, with nodes
    flavor: str = _SIM["flavor"]
    max_workers: int | None = _SIM["max_workers"]  # None: as many as the data center holds
    max_idle_time: float = _SIM["max_idle_time"]
    call_interval: float = _SIM["call_interval"]
    runtime: str = _SIM["runtime"]  # whose boot and transfer times: vm, pod or local
    calibration: Path | None = None  # a file of `dacirco calibrate` (local models)
    duration_scale: float = _CATALOG["duration_scale"]
    max_height: int | None = _CATALOG["max_height"]
    catalog: str = "default"  # default, or short (clips as long as a VM boot)
    exact: bool = _SIM["exact"]  # the policy called on every tick
    split: bool = _SIM["split"]  # policies may split jobs in chunks
    priorities: str | None = None  # the jobs' mix, PRIORITY:SHARE,... (None: every job at 0)
    priority_aging: float = _SIM["priority_aging"]  # seconds of waiting worth one level
    repeats: float = _SETUP["repeats"]  # share of requests repeating an earlier one
    reuse: bool = _SIM["reuse"]  # identical requests share one output, as in the service
    ladder_share: float = _LADDER["share"]  # share of requests asking for a preset
    ladder_preset: str = _LADDER["preset"]  # the shipped preset they ask for
    ladder_quality: bool = _LADDER["quality"]  # they measure their quality
    ladder_thumbnails: float | None = _LADDER["thumbnails"]  # thumbnails every N s (None: none)
    policy_knob: tuple[str, ...] = ()  # NAME=VALUE each: the policies' knobs (policies/knobs.py)

    def setup(self) -> Setup:
        """What every run of these options starts from; a ``ValueError`` naming what cannot
        work (an unknown flavor or runtime, a data center too small for the flavor ...)."""
        check_runtime(self.runtime)
        if self.flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {self.flavor!r}; one of {', '.join(FLAVORS)}")
        if self.nodes is None:
            datacenter = DataCenter.reference()
        else:
            datacenter = DataCenter.uniform(self.nodes, self.cores, self.memory)
        if datacenter.holds(FLAVORS[self.flavor]) < 1:
            raise ValueError(f"no node can hold a {self.flavor} worker")
        calibration = Calibration.load(self.calibration) if self.calibration else None
        if self.call_interval <= 0:
            raise ValueError("call_interval must be > 0")
        priorities = parse_priorities(self.priorities) if self.priorities is not None else ()
        if not (self.priority_aging >= 0 and math.isfinite(self.priority_aging)):
            raise ValueError(f"--priority-aging {self.priority_aging}: must be a number >= 0")
        if not 0.0 <= self.repeats <= 1.0:
            raise ValueError(f"--repeats {self.repeats}: must be a share in 0..1")
        try:
            policy_knobs = knobs.parse(self.policy_knob)
        except ValueError as exc:
            raise ValueError(f"--policy-knob {exc}") from None
        mix = LadderMix(
            self.ladder_share, self.ladder_preset, self.ladder_quality, self.ladder_thumbnails
        ).check()
        return Setup(
            datacenter=datacenter,
            config=SimConfig(
                **{knob: getattr(self, knob) for knob in KNOBS}, policy_knobs=policy_knobs
            ),
            models=Models.build(self.runtime, calibration),
            jobs=self.jobs,
            catalog=CatalogShape.named(self.catalog, self.duration_scale, self.max_height),
            load=self.load,
            params=dict(self.params),
            priorities=priorities,
            repeats=self.repeats,
            ladder=mix if mix.share > 0 else None,
        )
