"""How often the season test (policies/season.py) finds a rhythm in traffic that has none:
Poisson arrivals at several steady rates, the season looked for once a minute all along
each run, as the statistics do for a policy. Every season found there is a false one; the
table counts them per rate and per number of stretches the test had (the fewer, the likelier
a skewed error passes by chance: season.MIN_TESTS is the floor).

    .venv/bin/python benchmarks/season_chance.py [--runs 60] [--hours 3]
        [--rates 0.05,0.3,1.0] [--min-tests 8]
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.policies import season
from dacirco.policies.stats import LONG_WINDOW, SHORT_WINDOW

console = Console(width=120)
REFIT = season.REFIT_BINS * season.BIN  # how often a policy's statistics look again


def false_seasons(rate: float, seconds: float, seed: int) -> tuple[int, int, Counter[int]]:
    """Fits made, false seasons found and, per count of stretches tested, how many (for one
    Poisson run of ``rate`` requests/s over ``seconds``)."""
    rng = random.Random(seed)
    arrivals = season.Arrivals()
    fits, found, by_tests = 0, 0, Counter[int]()
    at, next_fit = 0.0, REFIT
    while at < seconds:
        at += rng.expovariate(rate)
        arrivals.add(at)
        while next_fit <= at:
            fits += 1
            found_now = season.fit(arrivals, next_fit, SHORT_WINDOW, LONG_WINDOW)
            if found_now is not None:
                found += 1
                by_tests[found_now.stretches] += 1
            next_fit += REFIT
    return fits, found, by_tests


def main(
    runs: Annotated[int, typer.Option(min=1, help="runs per rate (seeds 0, 1, ...)")] = 60,
    hours: Annotated[float, typer.Option(min=0.1, help="length of each run")] = 3.0,
    rates: Annotated[str, typer.Option(help="requests/s, comma-separated")] = "0.05,0.3,1.0",
    min_tests: Annotated[
        int, typer.Option(min=2, help="the floor of stretches tested (season.MIN_TESTS)")
    ] = season.MIN_TESTS,
) -> None:
    """Count the seasons the test finds in Poisson traffic (all of them false)."""
    try:
        values = [float(r) for r in rates.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"--rates must be numbers separated by commas, not {rates!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise typer.BadParameter(f"--rates must all be above 0, not {rates!r}")
    season.MIN_TESTS = min_tests
    table = Table(title=f"false seasons in Poisson traffic ({runs} runs of {hours:g} h per rate)")
    for col in ("requests/s", "fits", "false seasons", "per fit", "stretches tested when found"):
        table.add_column(col, justify="right")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("runs", total=runs * len(values))
        for rate in values:
            fits, found, tests = 0, 0, Counter[int]()
            for seed in range(runs):
                f, n, t = false_seasons(rate, hours * 3600.0, seed)
                fits, found = fits + f, found + n
                tests.update(t)
                bar.advance(task)
            where = ", ".join(f"{k}: {v}" for k, v in sorted(tests.items())) or "-"
            table.add_row(f"{rate:g}", f"{fits:,}", str(found), f"{found / fits:.2e}", where)
    console.print(table)
    console.print(f"the test's floor: {min_tests} stretches; its level: {season.LEVEL:.3%}")


if __name__ == "__main__":
    typer.run(main)
