"""The benchmarks run end to end and print their figures (their speed is not judged)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_overhead_benchmark_runs_and_prints_its_figures():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "overhead.py"),
            "--repeats", "1", "--movie", "bbb_1.mp4",
            "--duration-scale", "0.3", "--max-height", "240", "--bitrate", "800",
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "median ratio" in out.stdout and "median overhead" in out.stdout
    assert "transcode" in out.stdout  # the step breakdown table


def test_storage_benchmark_runs_and_prints_both_backends():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "storage.py"),
            "--repeats", "1", "--movie", "bbb_1.mp4",
            "--duration-scale", "0.3", "--max-height", "240", "--bitrate", "800",
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "local" in out.stdout and "SeaweedFS S3" in out.stdout
    assert "MB/s" in out.stdout


def test_sampler_benchmark_runs_and_prints_its_cost():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sampler.py"), "--samples", "10"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CPU per sample" in out.stdout and "share of one core" in out.stdout


def test_policies_benchmarks_run_and_print_their_figures(tmp_path):
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "policies_real.py"),
            "--requests", "3", "--gap", "1", "--duration-scale", "0.05", "--max-height", "180",
            "--settle", "5", "--repeats", "2",
        ],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT / "benchmarks",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "average delay: real" in out.stdout and "reserved core-seconds: real" in out.stdout
    assert "p95 delay: real" in out.stdout and "real boots" in out.stdout
    assert "2 rounds" in out.stdout and "adaptive, real over the rounds" in out.stdout
    assert "is not read by" not in out.stderr  # each policy gets only the options it reads
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "policies.py"),
            "--seeds", "1", "--jobs", "30", "--out", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    text = (tmp_path / "policies.md").read_text()
    assert "| poisson@0.3 | 0.30 | right-size |" in text and "*lower bound*" in text
    assert (tmp_path / "img" / "pareto-default.png").stat().st_size > 10_000
    assert (tmp_path / "img" / "pareto-short.png").stat().st_size > 10_000


def test_runtimes_benchmark_runs_and_prints_both_runtimes():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "runtimes.py"), "--repeats", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "local" in out.stdout and "Ray" in out.stdout and "median" in out.stdout


def test_chunked_benchmark_runs_and_prints_its_figures():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "chunked.py"),
            "--movie", "bbb_1.mp4", "--duration-scale", "0.3", "--max-height", "240",
            "--repeats", "1",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "speedup" in out.stdout and "merge" in out.stdout


def test_simulated_chunking_benchmark_runs_and_prints_the_speedups():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "chunked_sim.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "speedup" in out.stdout and "goal 0.8 K" in out.stdout


def test_cancel_benchmark_runs_and_prints_its_figures():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cancel.py"), "--repeats", "2"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "worker Idle: median" in out.stdout and "none rebooted" in out.stdout


def test_priorities_benchmark_runs_and_prints_its_table():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "priorities.py")],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| right-size | 10 % at 50, aging 60 s |" in out.stdout


def test_decisions_benchmark_runs_and_prints_every_policy():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "decisions.py"),
            "--waiting", "200", "--workers", "30", "--repeats", "3",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "median (ms)" in out.stdout and "200 waiting" in out.stdout
    for name in ("grace-period", "minimize-workers", "right-size"):
        assert name in out.stdout


def test_sim_scale_benchmark_runs_and_prints_its_wall_time():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "sim_scale.py"),
            "--jobs", "300", "--nodes", "2", "--repeats", "1",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "median wall (s)" in out.stdout and "policy calls" in out.stdout


def test_scale_benchmark_runs_and_prints_each_figure_beside_its_goal():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "scale.py"),
            "--stored", "300", "--rate", "20", "--seconds", "2",
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    for figure in ("start-up, 300 stored jobs", "GET /jobs/{id} p99", "POST /jobs p99"):
        assert figure in out.stdout
    assert re.search(r"accepted jobs not listed afterwards\s*│\s*0\s*│\s*0\s*│", out.stdout)
    assert re.search(r"answers\s*│[^│]*│\s*201: 40\s*│", out.stdout), out.stdout
    assert re.search(r"service CPU per answered POST /jobs\s*│[^│]*│\s*\d+ µs", out.stdout)


def test_adaptive_pool_benchmark_runs_and_writes_its_plot(tmp_path):
    plot = tmp_path / "adaptive-pool.png"
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "adaptive_pool.py"),
            "--period", "600", "--periods", "1", "--quiet-seconds", "120",
            "--burst-seconds", "30", "--after-seconds", "60", "--out", str(plot),
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "busiest" in out.stdout and "quietest" in out.stdout
    assert "mean of the first 10" in out.stdout
    assert 10_000 < plot.stat().st_size < 150_000


def test_default_policy_benchmark_prints_the_targets_cell_by_cell():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "default_policy.py"),
            "--grid", "general", "--seeds", "1", "--first-seed", "3", "--jobs", "30",
            "--no-oracle", "--procs", "1", "--markdown",
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pod boots, short bursty" in out.stdout and "heavy-tailed catalog" in out.stdout
    assert re.search(r"all three targets met in \d of 8 cells", out.stdout), out.stdout
    assert "general, seeds 3-3 x 30 requests" in out.stdout, out.stdout
    # The same table in Markdown, as docs/policies.md has it: a header and a row per cell.
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| cell | avg / grace |") and len(rows) == 2 + 8, rows
    assert all(r.endswith(("| yes |", "| no |")) for r in rows[2:]), rows
    bad = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "default_policy.py"), "--grid", "nowhere"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "unknown grid 'nowhere'" in bad.stderr


def test_default_policy_benchmark_runs_adaptive_with_a_knob_and_stores_its_runs_apart(tmp_path):
    runs = tmp_path / "runs.jsonl"
    script = str(ROOT / "benchmarks" / "default_policy.py")
    base = [sys.executable, script, "--grid", "general", "--seeds", "1", "--jobs", "30",
            "--no-oracle", "--procs", "1", "--runs", str(runs)]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    tuned = subprocess.run([*base, "--policy-knob", "max_chunks=1"], capture_output=True,
                           text=True, timeout=240, check=False, env=env)  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "adaptive max_chunks=1 against its targets (general, 1 seeds" in tuned.stdout
    names = [json.loads(line)[1] for line in runs.read_text().splitlines()]
    assert names.count("adaptive max_chunks=1") == 8 and "adaptive" not in names
    # The default's runs are simulated (none stored under its name), the others read back.
    plain = subprocess.run(base, capture_output=True, text=True, timeout=240, check=False, env=env)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "16 runs read from" in plain.stdout and "8 to simulate" in plain.stdout
    bad = subprocess.run([*base, "--policy-knob", "max_chunks=100"], capture_output=True,
                         text=True, timeout=60, check=False, env=env)  # fmt: skip
    assert bad.returncode == 2 and "max_chunks: 100 is out of its range, 1 to 16" in bad.stderr


def test_season_chance_benchmark_counts_false_seasons_and_refuses_bad_rates():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "season_chance.py"),
            "--runs", "1", "--hours", "0.5", "--rates", "1.0", "--min-tests", "8",
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "false seasons in Poisson traffic (1 runs of 0.5 h per rate)" in out.stdout
    # Half an hour looked at once a minute: 30 fits at 1 request/s.
    assert re.search(r"│\s+1\s+│\s+30\s+│", out.stdout), out.stdout
    assert "the test's floor: 8 stretches; its level: 0.135%" in out.stdout
    bad = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "season_chance.py"), "--rates", "1,x"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "--rates must be numbers separated by commas" in bad.stderr


def test_frontier_benchmark_sweeps_a_knob_and_writes_its_plot(tmp_path):
    plot = tmp_path / "frontier.png"
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "frontier.py"),
            "--cell", "short diurnal", "--seeds", "1", "--jobs", "60", "--procs", "1",
            "--knob", "linger_boots=2", "--knob", "max_chunks=1", "--markdown",
            "--plot", str(plot),
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "adaptive's knobs on short diurnal (seeds 1-1 x 60 requests)" in out.stdout
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| setting | avg / grace |") and len(rows) == 2 + 3, rows
    names = {r.split(" | ")[0][2:] for r in rows[2:]}
    assert names == {"defaults", "linger_boots=2", "max_chunks=1"}, rows
    assert re.search(r"\d of 3 settings meet all three targets", out.stdout), out.stdout
    assert 10_000 < plot.stat().st_size < 200_000
    bad = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "frontier.py"), "--knob", "speed=2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "has no knob 'speed'" in bad.stderr


def test_frontier_benchmark_sweeps_a_peers_knobs_beside_adaptives_defaults():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "frontier.py"),
            "--cell", "short diurnal", "--seeds", "1", "--jobs", "40", "--procs", "1",
            "--policy", "queue-threshold", "--markdown",
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "queue-threshold's knobs on short diurnal (seeds 1-1 x 40 requests)" in out.stdout
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| ")]
    names = [r.split(" | ")[0][2:] for r in rows[2:]]
    assert sorted(names) == ["adaptive (defaults)", "defaults", "threshold=1", "threshold=4"]
    assert re.search(r"\d of 3 settings of queue-threshold are as fast and as lean", out.stdout)
    bad = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "frontier.py"), "--policy", "grace-period"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "'grace-period' is not a policy with knobs" in bad.stderr


def test_retune_benchmark_prints_the_retuned_runs_beside_the_fixed_settings():
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "retune.py"),
            "--cell", "short diurnal", "--seeds", "1", "--jobs", "80", "--procs", "1",
            "--every", "60", "--window", "200", "--weight", "1", "--markdown",
        ],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln.split(" | ") for ln in out.stdout.splitlines() if ln.startswith("| ")]
    assert rows[0][0] == "| run" and len(rows) == 2 + 6 + 1, rows
    assert rows[2][0] == "| fixed: defaults" and rows[-1][0] == "| retuned, weight 1"
    chosen = [int(n) for n in rows[-1][-1].rstrip(" |").split()]
    assert len(chosen) == 6 and sum(chosen) > 0  # some replays ran and chose a setting
    for row in rows[2:]:
        assert all(float(x) > 0 for x in row[1:4]), row
