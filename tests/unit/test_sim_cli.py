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
    assert "oracle" in result.output  # beside the bound in every table, unless --no-oracle
    assert plot.stat().st_size > 0
    assert len(csv_file.read_text().splitlines()) == 1 + 3 * 2 * 2 + 2 * 2
    without = runner.invoke(app, [*args, "--no-oracle"])
    assert without.exit_code == 0 and "oracle" not in without.output


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


def test_repeated_requests_are_reused_counted_apart_and_save_work(tmp_path):
    log = tmp_path / "tc-events-01.txt"
    base = ["simulate", "--workload", "poisson@0.6", "-n", "300", "--repeats", "0.4"]
    result = runner.invoke(app, [*base, "--event-log", str(log)])
    assert result.exit_code == 0, result.output
    assert "jobs reused" in result.output
    run = from_log(log)  # the simulator's log reads back like the controller's
    reused = [j for j in run.jobs if j.reused_from is not None]
    assert 80 <= len(reused) <= 160 and all(j.state == "Completed" for j in reused)
    assert run.meta["repeats"] == 0.4
    opts = {"jobs": 300, "repeats": 0.4}
    with_reuse = SimOptions(**opts).setup()  # type: ignore[arg-type]
    without = SimOptions(**opts, reuse=False).setup()  # type: ignore[arg-type]
    jobs, _ = with_reuse.workload("poisson@0.6", 1)
    assert jobs == without.workload("poisson@0.6", 1)[0]  # the same requests
    a, b = (s.run("grace-period", jobs, 1).run for s in (with_reuse, without))
    from dacirco.analytics.figures import figures

    fa, fb = figures(a), figures(b)
    assert fa.reused == len(reused) and fb.reused == 0
    assert fa.completed + fa.reused == fb.completed == 300
    # Fewer transcodes: less busy time (the same jobs, the same draws).
    assert fa.busy_core_seconds < 0.8 * fb.busy_core_seconds
    # The lower bound counts only the work that is needed.
    assert with_reuse.bound(jobs).reserved_core_seconds < without.bound(jobs).reserved_core_seconds


def test_repeats_outside_0_1_are_refused_in_one_line():
    result = runner.invoke(app, ["simulate", "--repeats", "1.5"])
    assert result.exit_code == 2 and "--repeats 1.5" in result.output


def test_a_repeated_policy_or_workload_counts_once_and_bad_outputs_are_one_line(tmp_path):
    csv_file = tmp_path / "runs.csv"
    args = ["compare", "--policies", "grace-period, grace-period", "--workloads",
            "classic,classic", "--seeds", "1", "-n", "20", "--plot", str(tmp_path / "p.png"),
            "--no-oracle", "--csv", str(csv_file)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(csv_file.read_text().splitlines()) == 1 + 1 + 1  # header, the run, its bound
    for bad in (["--policies", ","], ["--workloads", " "]):
        result = runner.invoke(app, ["compare", *bad])
        assert result.exit_code == 2 and "give at least one" in result.output
    blocked = tmp_path / "file"
    blocked.write_text("")
    args[-1] = str(blocked / "runs.csv")  # a folder that is a file
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "cannot write" in result.output
    assert "Traceback" not in result.output
