"""benchmarks/retune.py: a replay takes the window's arrivals, moved to start at 0, runs each
candidate setting on them, and adopts the one of lowest cost; a window of too few requests
keeps the knobs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import retune as rt


@dataclass(frozen=True)
class Arrival:
    arrival: float


class Replays:
    """A stand-in for the simulator: candidate ``best`` costs least; it keeps what it ran."""

    def __init__(self, best: int, p95_only: bool = False) -> None:
        self.best, self.p95_only, self.runs = best, p95_only, []

    def run(self, name, jobs, seed, policy=None):
        i = next(k for k, c in enumerate(rt.CANDIDATES) if rt.adaptive(c) == policy)
        self.runs.append((i, [j.arrival for j in jobs]))
        low = i == self.best
        reserved = 100.0 if self.p95_only else (90.0 if low else 100.0)
        p95 = 10.0 if (low or not self.p95_only) else 20.0
        return SimpleNamespace(
            run=SimpleNamespace(reserved_core_seconds=reserved, delay=SimpleNamespace(p95=p95))
        )


@pytest.fixture(autouse=True)
def figures_are_the_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "figures", lambda run: run)


def test_a_replay_runs_every_setting_on_the_windows_arrivals_and_adopts_the_cheapest() -> None:
    jobs = [Arrival(10.0 * i) for i in range(60)]  # one every 10 s, up to 590 s
    replays = Replays(best=4)
    policy = rt.Retuned(replays, jobs, weight=1.0, every=300.0, window=250.0)  # type: ignore[arg-type]
    policy.retune(500.0)
    assert [i for i, _ in replays.runs] == list(range(len(rt.CANDIDATES)))
    for _, arrivals in replays.runs:  # 250 s to 490 s, moved to start at 0
        assert arrivals == [10.0 * i for i in range(25)]
    assert policy.chosen == [4] and policy.current == rt.adaptive(rt.CANDIDATES[4])


def test_the_weight_sets_what_the_cost_reads() -> None:
    jobs = [Arrival(float(i)) for i in range(40)]
    # Candidate 2 is the fastest, no leaner: weight 0 reads the core-seconds alone (a tie
    # that the defaults, first, win), weight 1 the p95 too.
    lean = rt.Retuned(Replays(2, p95_only=True), jobs, weight=0.0, every=1.0, window=60.0)  # type: ignore[arg-type]
    lean.retune(40.0)
    fast = rt.Retuned(Replays(2, p95_only=True), jobs, weight=1.0, every=1.0, window=60.0)  # type: ignore[arg-type]
    fast.retune(40.0)
    assert lean.chosen == [0] and fast.chosen == [2]


def test_a_window_of_too_few_requests_keeps_the_knobs() -> None:
    jobs = [Arrival(float(i)) for i in range(rt.MIN_REPLAYED - 1)]
    replays = Replays(best=3)
    policy = rt.Retuned(replays, jobs, weight=1.0, every=60.0, window=600.0)  # type: ignore[arg-type]
    policy.retune(100.0)
    assert replays.runs == [] and policy.chosen == [] and policy.current == rt.adaptive(())
