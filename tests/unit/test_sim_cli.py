"""``dacirco simulate`` and ``dacirco compare`` from the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from dacirco.analytics.run import from_log
from dacirco.cli import app

runner = CliRunner()


def test_simulate_prints_figures_and_writes_a_log_that_reads_back(tmp_path):
    log = tmp_path / "tc-events-01.txt"
    args = ["simulate", "--policy", "minimize-workers", "-n", "40", "--event-log", str(log)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "delay avg" in result.output and "lower bound" in result.output
    run = from_log(log)
    assert len(run.jobs) == 40 and run.meta["workload"] == "classic"
    assert len(run.nodes) == 3


def test_compare_prints_a_table_and_draws_the_pareto_plot(tmp_path):
    plot, csv_file = tmp_path / "p.png", tmp_path / "runs.csv"
    args = ["compare", "--workloads", "classic,bursty", "--seeds", "2", "-n", "30",
            "--plot", str(plot), "--csv", str(csv_file)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "lower bound" in result.output and "grace-period" in result.output
    assert plot.stat().st_size > 0
    assert len(csv_file.read_text().splitlines()) == 1 + 2 * 2 * 2 + 2 * 2


def test_bad_options_are_refused_in_one_line():
    assert runner.invoke(app, ["simulate", "--policy", "nope"]).exit_code == 2
    assert runner.invoke(app, ["simulate", "--flavor", "huge"]).exit_code == 2
    assert (
        runner.invoke(
            app, ["simulate", "--nodes", "1", "--cores", "1", "--flavor", "small"]
        ).exit_code
        == 2
    )
    assert runner.invoke(app, ["simulate", "--param", "rate"]).exit_code == 2
