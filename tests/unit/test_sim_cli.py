"""``dacirco simulate`` and ``dacirco compare`` from the command line."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from dacirco.analytics.run import from_log
from dacirco.cli import app
from dacirco.sim import cli as sim_cli
from dacirco.sim.options import SimOptions
from dacirco.sim.run import SimConfig

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


def test_simulate_and_compare_take_the_same_options_as_one_object(monkeypatch):
    seen: list[SimOptions] = []

    def setup(options: SimOptions) -> None:
        seen.append(options)
        raise typer.Exit(0)

    monkeypatch.setattr(sim_cli, "_setup", setup)
    shared = ["-n", "7", "--nodes", "2", "--cores", "4", "--param", "rate=2", "--no-split",
              "--runtime", "pod", "--max-idle-time", "5", "--catalog", "short"]  # fmt: skip
    for args in (["simulate"], ["compare"], ["simulate", *shared], ["compare", *shared]):
        assert runner.invoke(app, args).exit_code == 0
    given = SimOptions(jobs=7, nodes=2, cores=4, params={"rate": 2.0}, split=False,
                       runtime="pod", max_idle_time=5.0, catalog="short")  # fmt: skip
    assert seen == [SimOptions(), SimOptions(), given, given]


def test_the_options_defaults_are_the_simulators():
    setup = SimOptions().setup()
    assert setup.config == SimConfig()
    assert setup.datacenter.cpus == 18 and setup.jobs == 500 and setup.params == {}
