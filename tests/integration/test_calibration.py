"""``dacirco calibrate``'s measures of a worker's boot and of splitting, on real processes and
real ffmpeg, and their way into the simulator's models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dacirco.calibration import catalog_movies, measure, time_boot
from dacirco.sim.calibrate import Calibration
from dacirco.sim.models import Models, Movie


def test_a_boot_is_timed_up_to_the_workers_registration_and_the_worker_exits():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    timing = time_boot()
    # A worker imports its agent, httpx and pydantic before it registers: tens of CPU ms.
    assert timing.cpu > 0.05 and 0.05 < timing.wall < 30.0
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_a_worker_that_never_registers_is_an_error_with_its_output(tmp_path, monkeypatch):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no interpreter here' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    with pytest.raises(subprocess.CalledProcessError) as info:
        time_boot()
    assert info.value.returncode == 3 and b"no interpreter here" in info.value.stderr


def test_the_split_costs_are_measured_and_reach_the_simulator(catalog_dir: Path):
    movies = catalog_movies(catalog_dir, ["bbb_1.mp4"])
    cal = measure(movies, presets=("fast",), threads=(1,), repeats=1, boot_repeats=1)
    assert cal.boot_s is not None and cal.boot_cpu_s is not None
    assert cal.chunk_overhead_s is not None and cal.merge_s is not None
    # A merge starts ffmpeg, reads the chunks and the input's audio, writes the output.
    assert 0.01 < cal.merge_s < 30.0 and 0.0 <= cal.chunk_overhead_s < 30.0
    # Measured and within bounds (its value on a 1 s clip is noise; benchmarks/policies_real.py
    # shows it on longer ones).
    below, above = cal.bitrate_exponent["h264/fast"]
    assert cal.bitrate_kbps == 3000 and 0.0 <= below <= 1.0 and 0.0 <= above <= 1.0
    model = Models.build("local", cal).transcode
    clip = model_movie(movies[0][1])
    assert model.seconds(clip, "h264", "fast", 1, 1000) <= model.seconds(
        clip, "h264", "fast", 1, 3000
    )
    split = Models.build("local", cal).split
    assert (split.chunk_overhead_s, split.merge_fixed_s) == (cal.chunk_overhead_s, cal.merge_s)
    assert measure(movies, presets=("ultrafast",), threads=(1,), repeats=1, boot_repeats=0,
                   chunks=0).merge_s is None  # fmt: skip


def test_the_calibrate_command_writes_every_measure_and_names_bad_input(
    catalog_dir: Path, tmp_path: Path
):
    out = tmp_path / "cal.json"
    base = [sys.executable, "-m", "dacirco.cli", "calibrate", "--data-dir", str(catalog_dir)]
    args = ["--movies", "bbb_1.mp4", "--presets", "ultrafast", "--threads", "1", "--repeats", "1"]
    done = subprocess.run(
        [*base, *args, "--out", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "local worker boot:" in done.stdout and "split in 2:" in done.stdout
    cal = Calibration.load(out)
    assert cal.line("h264", "ultrafast", 1) is not None
    assert cal.boot_s is not None and cal.merge_s is not None and cal.chunk_overhead_s is not None
    bad = subprocess.run(
        [*base, *args[:-4], "--threads", "one", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--threads" in bad.stderr and "integers" in bad.stderr
    assert "Traceback" not in bad.stderr


def model_movie(info) -> Movie:  # type: ignore[no-untyped-def]
    return Movie(info.name, info.duration, info.width, info.height, info.fps, info.size)
