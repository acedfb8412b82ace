"""benchmarks/policies_real.py's verdict: where the real and simulated orders of two policies
differ, the pair is a tie when the real runs cannot order it (their figures overlap from one
round to the next, or, for delays, the paired bootstrap interval holds 0); else the orders
are different."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import policies_real as pr


class Rounds:
    """A policy's real runs as the verdict reads them: the per-request delays of each round
    and one figure per round."""

    def __init__(self, figure: list[float], delays: list[list[float]]) -> None:
        self.figure = figure
        self.runs = [
            SimpleNamespace(
                jobs=[SimpleNamespace(received=i, uploaded=i + d) for i, d in enumerate(ds)]
            )
            for ds in delays
        ]

    def span(self, key) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        return min(self.figure), max(self.figure)


def mean(d: list[float]) -> float:
    return sum(d) / len(d)


def test_the_same_order_is_the_same() -> None:
    runs = {"a": Rounds([1.0], [[1.0]]), "b": Rounds([2.0], [[2.0]])}
    assert pr.verdict(["a", "b"], ["a", "b"], runs, pr.avg, mean) == "same"  # type: ignore[arg-type]


def test_a_swap_the_requests_tell_apart_is_different() -> None:
    fast, slow = [1.0, 1.1, 0.9, 1.2, 1.0, 1.05], [1.5, 1.6, 1.4, 1.7, 1.5, 1.55]
    runs = {"a": Rounds([1.04], [fast]), "b": Rounds([1.54], [slow])}
    assert pr.verdict(["a", "b"], ["b", "a"], runs, pr.avg, mean) == "different"  # type: ignore[arg-type]


def test_a_swap_within_the_requests_noise_is_a_tie() -> None:
    a, b = [1.0, 3.0, 0.5, 2.0], [2.9, 0.6, 2.1, 1.0]
    runs = {"a": Rounds([1.62], [a]), "b": Rounds([1.65], [b])}
    out = pr.verdict(["a", "b"], ["b", "a"], runs, pr.avg, mean)  # type: ignore[arg-type]
    assert out.startswith("same where the real runs tell them apart") and "95 % interval" in out


def test_a_swap_whose_rounds_overlap_is_a_tie_even_for_reserved_core_seconds() -> None:
    # Every request consistently faster under "a" in each round, but the rounds overlap: the
    # machine's drift from run to run is larger than the pair's difference.
    runs = {
        "a": Rounds([30.0, 34.0], [[1.0, 1.0], [1.2, 1.2]]),
        "b": Rounds([33.0, 36.0], [[1.1, 1.1], [1.3, 1.3]]),
    }
    out = pr.verdict(["a", "b"], ["b", "a"], runs, pr.reserved)  # type: ignore[arg-type]
    assert "a 30.00-34.00, b 33.00-36.00 over the rounds" in out
    apart = {"a": Rounds([30.0, 31.0], [[1.0], [1.0]]), "b": Rounds([33.0, 36.0], [[1.1], [1.1]])}
    assert pr.verdict(["a", "b"], ["b", "a"], apart, pr.reserved) == "different"  # type: ignore[arg-type]
