"""Student's t (policies.student_t): its tail against closed forms and tables, its quantile
as the tail's inverse, and clear errors for what has no answer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from dacirco.policies.student_t import quantile, upper_tail


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0, 2.0, 7.5])
def test_the_tail_matches_the_closed_forms_of_one_and_two_degrees(t: float) -> None:
    assert upper_tail(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-12)
    assert upper_tail(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(t * t + 2)), abs=1e-12)


@pytest.mark.parametrize(
    ("df", "t975"),  # the usual table's two-sided 5 % values
    [(3, 3.182), (4, 2.776), (5, 2.571), (7, 2.365), (9, 2.262), (10, 2.228), (30, 2.042)],
)
def test_the_quantile_matches_the_table(df: int, t975: float) -> None:
    assert quantile(0.025, df) == pytest.approx(t975, abs=1e-3)


def test_many_degrees_are_the_normal() -> None:
    level = 0.5 * math.erfc(3.0 / math.sqrt(2))
    assert quantile(level, 100_000) == pytest.approx(3.0, abs=1e-3)
    assert quantile(level, 7) > quantile(level, 30) > quantile(level, 1000) > 3.0


@given(hs.integers(1, 200), hs.floats(1e-6, 0.49))
def test_the_quantile_inverts_the_tail(df: int, tail: float) -> None:
    assert upper_tail(quantile(tail, df), df) == pytest.approx(tail, rel=1e-6)


def test_what_has_no_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="degrees of freedom must be at least 1, not 0"):
        upper_tail(1.0, 0)
    with pytest.raises(ValueError, match=r"tail probability must be in \(0, 0.5\), not 0.5"):
        quantile(0.5, 3)
