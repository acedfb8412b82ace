"""The simulator against reality: one short scenario played for real (local runtime, real
ffmpeg, minimize-workers, one tiny worker at a time) and in the simulator (the same arrival
times, movies, bitrates and presets). Average delay and total busy time (sum of the workers'
busy intervals) must agree within 20 %.

Robust to the machine's other load. A wall time is not a property of a model: on a 2-core
machine the same encode takes 1.0 s on an idle core and 1.5 to 3 s while other work shares
the cores, and that load comes and goes between a calibration and a real run, and within a
run. Calibrated in wall time before the run, the simulator missed by 40 to 60 % whenever a
load started after the calibration. So the models are compared in CPU seconds, which such
load moves far less (within about 10 %, where wall time grows 1.5 to 3 times), and the
machine's speed is taken from the real run itself, at the moment of each job, as its arrival
times are:

- the calibration (standalone ffmpeg on the movies and a worker's start) is measured once
  before and once after the run (``sim.calibrate.combine``), bracketing its moment; it gives
  each encode's CPU seconds (``Calibration.transcode_cpu``) and a boot's (``boot_cpu_s``);
- the real run's ffmpeg is a wrapper (``DACIRCO_FFMPEG``, a bash of a few milliseconds) that
  logs each encode's user + system seconds; a job's transcode step (EV5 -> EV6) over those is
  how many wall seconds a CPU second took on this machine at that moment; each worker's own
  CPU seconds when it registered (polled) give the same ratio for its boot;
- the simulator gets the calibration's CPU model at the run's mean ratios
  (``Calibration.at_speed``: transcodes, boots) and each job's own ratio relative to that
  mean as its noise factor.

A job's simulated transcode is thus its calibrated CPU seconds times its measured ratio: the
real step exactly when the CPU model is right, off by the model's error when it is not; a
simulated boot is likewise the calibrated boot's CPU seconds at the boots' ratio. Beyond the
arrivals and these ratios nothing of the real run enters the simulation: its queueing, boots,
transfers, assignments and stops are the simulator's to reproduce.

The comparison can still fail: the calibration's CPU model must predict the CPU seconds the
real encodes used within the tolerance, and the same run replayed with wrong models
(transcodes x 1.5 and / 1.5, boots x 10) must miss by more than the tolerance. For
information, the wall-time simulation (the wall lines measured before the run, no ratio), the
comparison that drifted with the load, is printed beside.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path

import psutil
import pytest

from dacirco.analytics.figures import Figures, figures
from dacirco.analytics.run import RunData, from_log
from dacirco.calibration import catalog_movies, measure
from dacirco.domain import Node
from dacirco.ffmpeg_bin import FFMPEG_ENV, ffmpeg_exe
from dacirco.scenario.model import Request
from dacirco.sim.calibrate import Calibration, combine
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import CatalogShape, SimJob, make_jobs
from tests.conftest import TEST_DURATION_SCALE, TEST_MAX_HEIGHT

# (seconds after the first request, movie, bitrate, preset): bursts that make jobs queue
# behind booting workers, and a gap long enough for minimize-workers to stop them.
SCENARIO = [  # "fast" encodes of a few seconds each: fixed costs do not dominate
    (0.0, "bbb_5.mp4", 3000, "fast"),
    (0.5, "bbb_3.mp4", 2000, "fast"),
    (1.0, "bbb_4.mp4", 4000, "fast"),
    (12.0, "bbb_2.mp4", 1500, "fast"),
    (12.3, "bbb_5.mp4", 6000, "fast"),
    (12.6, "bbb_1.mp4", 1000, "fast"),
]
TOLERANCE = 0.20
STEPS = ("received", "assigned", "started", "downloaded", "transcoded", "uploaded")
# Models the comparison must reject: (label, transcode factor, boot factor).
WRONG_MODELS = [
    ("transcode x 1.5", 1.5, 1.0),
    ("transcode / 1.5", 1 / 1.5, 1.0),
    ("boot x 10", 1.0, 10.0),
]


TIMED_FFMPEG = """#!/bin/bash
# ffmpeg, then its user and system seconds (the children line of bash's `times`) appended to
# the log; its exit status kept.
{ffmpeg} "$@"
status=$?
times >> {log}
exit $status
"""
_TIMES = re.compile(r"(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s")


def timed_ffmpeg(folder: Path) -> tuple[Path, Path]:
    """A wrapper for ``DACIRCO_FFMPEG`` that logs each ffmpeg's CPU seconds; (wrapper, log)."""
    log = folder / "ffmpeg-cpu.txt"
    script = folder / "ffmpeg-timed"
    script.write_text(
        TIMED_FFMPEG.format(ffmpeg=shlex.quote(ffmpeg_exe()), log=shlex.quote(str(log)))
    )
    script.chmod(0o755)
    return script, log


def ffmpeg_cpu(log: Path) -> list[float]:
    """The CPU seconds of each ffmpeg run, in order (the second line of each `times`)."""
    lines = [m for m in map(_TIMES.search, log.read_text().splitlines()) if m]
    return [60 * int(m[1]) + float(m[2]) + 60 * int(m[3]) + float(m[4]) for m in lines[1::2]]


class BootCpu:
    """Polls the service's worker processes for their own CPU seconds (user + system), to
    know what a worker had used when it registered. Known workers are read every
    ``interval``; new ones looked for every ``discover``."""

    def __init__(self, service_pid: int, interval: float = 0.02, discover: float = 0.05) -> None:
        self.root = psutil.Process(service_pid)
        self.interval, self.discover = interval, discover
        self.readings: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (time, CPU)
        self._workers: dict[int, tuple[psutil.Process, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="boot-cpu", daemon=True)

    def __enter__(self) -> BootCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _find(self) -> None:
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            return
        for proc in children:
            if proc.pid in self._workers:
                continue
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            if "--worker-id" in cmd[:-1]:  # not yet: a child forked but not yet exec'd
                self._workers[proc.pid] = (proc, cmd[cmd.index("--worker-id") + 1])

    def _loop(self) -> None:
        next_find = 0.0
        while not self._stop.wait(self.interval):
            if time.monotonic() >= next_find:
                self._find()
                next_find = time.monotonic() + self.discover
            for proc, worker_id in list(self._workers.values()):
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                self.readings[worker_id].append((time.time(), t.user + t.system))

    def boots(self, run: RunData) -> list[tuple[float, float]]:
        """(wall, CPU) seconds of each worker's boot: from its start (EV2) to its registration
        (EV11), and its own CPU seconds at its last reading by then (interpreter, imports,
        registration); workers not seen before they registered are left out."""
        out = []
        for w in run.workers:
            seen = [c for t, c in self.readings.get(w.worker_id, []) if t <= (w.registered or 0)]
            if w.registered is not None and seen:
                out.append((w.registered - w.created, seen[-1]))
        return out


@dataclass(frozen=True)
class Gaps:
    delay: float
    busy: float

    @classmethod
    def of(cls, real: Figures, sim: Figures) -> Gaps:
        return cls(
            (sim.delay.avg - real.delay.avg) / real.delay.avg,
            (sim.busy_core_seconds - real.busy_core_seconds) / real.busy_core_seconds,
        )

    @property
    def worst(self) -> float:
        return max(abs(self.delay), abs(self.busy))

    def __str__(self) -> str:
        return f"delay {self.delay:+.1%}, busy {self.busy:+.1%}"


def steps(run: RunData) -> str:
    """Mean seconds of each step of the completed jobs."""
    done = [j for j in run.jobs if j.uploaded is not None]
    means = []
    for a, b in pairwise(STEPS):
        means.append(sum(getattr(j, b) - getattr(j, a) for j in done) / len(done))
    return " / ".join(f"{m:.2f}" for m in means)


def simulate(calibration: Calibration, jobs: list[SimJob]) -> RunData:
    node = Node("local", os.cpu_count() or 1, psutil.virtual_memory().total / 2**30)
    config = SimConfig(
        algorithm="minimize-workers",
        flavor="tiny",
        max_workers=1,
        call_interval=0.2,  # the test service's
        runtime="local",
    )
    models = Models.build("local", calibration)
    return Simulation(config, DataCenter((node,)), models, jobs, seed=1).run().run


def measured(movie: str, duration: float, wall: float, cpu: float) -> dict:
    """One raw measure of a 720p25 movie, as ``dacirco.calibration.measure`` records it."""
    return {
        "movie": movie, "codec": "h264", "preset": "fast", "threads": 1, "duration": duration,
        "width": 1280, "height": 720, "fps": 25.0, "seconds": [wall], "cpu_seconds": [cpu],
    }  # fmt: skip


def test_cpu_calibration_arithmetic():
    """What the comparison rests on, without a real run: CPU lines pooled from two measurings,
    turned into wall times at given ratios, and kept through the calibration file."""
    before = Calibration(boot_s=0.3, boot_cpu_s=0.3, samples=[measured("a", 1.0, 1.0, 1.1)])
    after = Calibration(
        boot_s=0.9,
        boot_cpu_s=0.5,
        samples=[measured("a", 1.0, 2.0, 1.3), measured("b", 2.0, 2.0, 2.4)],
    )
    both = combine([before, after])
    rate = 1280 * 720 * 25.0
    wall, cpu = both.line("h264", "fast", 1), both.transcode_cpu["h264/fast/1"]
    assert wall is not None
    assert wall.seconds(1.0, rate) == pytest.approx(1.0)  # the best run of "a"
    assert cpu.seconds(1.0, rate) == pytest.approx(1.2)  # the mean CPU seconds of "a"
    assert cpu.seconds(2.0, rate) == pytest.approx(2.4)
    assert (both.boot_s, both.boot_cpu_s) == (pytest.approx(0.6), pytest.approx(0.4))
    loaded = both.at_speed(2.0, 3.0)
    assert loaded.line("h264", "fast", 1).seconds(2.0, rate) == pytest.approx(4.8)
    assert loaded.boot_s == pytest.approx(1.2)
    assert both.at_speed(2.0).boot_s == pytest.approx(0.8)
    back = Calibration.from_json(both.to_json())
    assert (back.transcode_cpu, back.boot_cpu_s) == (both.transcode_cpu, both.boot_cpu_s)
    with pytest.raises(ValueError):
        both.at_speed(0.0)


@pytest.mark.slow
def test_simulated_delay_and_busy_time_match_a_real_run(
    service_factory, catalog_dir, tmp_path, monkeypatch
):
    movies = catalog_movies(catalog_dir, sorted({m for _, m, _, _ in SCENARIO}))

    def calibrate() -> Calibration:
        # No bitrate exponent: on these 1 s clips it swings from 0.3 to 0.7 between runs.
        return measure(
            movies, presets=("fast",), threads=(1,), repeats=1, boot_repeats=2, chunks=0,
            by_bitrate=False,
        )  # fmt: skip

    before = calibrate()  # and one after the run: the two bracket its moment
    # The real run: the test service's options (--call-interval 0.2) plus these; its ffmpeg
    # timed by a wrapper (a bash in between: a few milliseconds).
    wrapper, cpu_log = timed_ffmpeg(tmp_path)
    monkeypatch.setenv(FFMPEG_ENV, str(wrapper))
    svc = service_factory(
        "--algorithm", "minimize-workers", "--max-workers", "1", "--flavor", "tiny"
    )
    with BootCpu(svc.proc.pid) as boot_probe:
        t0 = time.monotonic()
        ids = []
        for at, movie, bitrate, speed in SCENARIO:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            ids.append(svc.submit(id_video=movie, bitrate=bitrate, speed=speed))
        for job_id in ids:
            assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=60) == "Completed"
        svc.wait_for(
            lambda: set(svc.worker_states().values()) == {"Stopped"}, 20, "workers stopped"
        )
    svc.stop()
    after = calibrate()
    calibration = combine([before, after])
    real_run = from_log(svc.event_log)
    real = figures(real_run)
    assert real.completed == len(SCENARIO)
    by_id = {j.job_id: j for j in real_run.jobs}
    real_jobs = [by_id[i] for i in ids]

    # The machine's speed during each real encode: wall seconds of its step per CPU second
    # (one worker at a time: the encodes ran in the order of the downloads); and during the
    # boots: wall seconds of a boot per CPU second of the worker by then.
    cpu_runs = ffmpeg_cpu(cpu_log)
    assert len(cpu_runs) == len(SCENARIO), cpu_log.read_text()
    in_order = sorted(real_jobs, key=lambda j: j.downloaded or 0.0)
    cpu_of = {j.job_id: c for j, c in zip(in_order, cpu_runs, strict=True)}
    wall = [j.transcoded - j.downloaded for j in real_jobs]
    cpu = [cpu_of[j.job_id] for j in real_jobs]
    ratio = [w / c for w, c in zip(wall, cpu, strict=True)]
    mean_ratio = sum(wall) / sum(cpu)
    boots = boot_probe.boots(real_run)
    boot_ratio = sum(w for w, _ in boots) / sum(c for _, c in boots) if boots else mean_ratio

    # The same arrivals (as the real controller received them), movies and presets.
    first = min(j.received for j in real_run.jobs)
    received = [j.received - first for j in real_jobs]
    requests = [
        Request(delay=t - (received[k - 1] if k else 0.0), movie=m, bitrate=b, speed=s)
        for k, (t, (_, m, b, s)) in enumerate(zip(received, SCENARIO, strict=True))
    ]
    shape = CatalogShape(TEST_DURATION_SCALE, TEST_MAX_HEIGHT)

    def jobs_for(cal: Calibration, factors: list[float] | None) -> list[SimJob]:
        jobs = make_jobs(requests, Models.build("local", cal), seed=1, catalog=shape)
        if factors is None:
            return jobs  # the calibration's own noise draws
        return [replace(j, noise=f) for j, f in zip(jobs, factors, strict=True)]

    # The calibration's CPU model against the CPU the real encodes used.
    def cpu_predicted(cal: Calibration) -> float:
        model = Models.build("local", cal.at_speed(1.0)).transcode
        return sum(model.seconds(j.movie, j.codec, j.speed, 1) for j in jobs_for(cal, None))

    predicted = cpu_predicted(calibration)
    cpu_gap = (predicted - sum(cpu)) / sum(cpu)

    at_run_speed = calibration.at_speed(mean_ratio, boot_ratio)
    factors = [r / mean_ratio for r in ratio]
    sim_run = simulate(at_run_speed, jobs_for(at_run_speed, factors))
    sim = figures(sim_run)
    assert sim.completed == len(SCENARIO)
    gaps = Gaps.of(real, sim)

    wrong = {}
    for label, transcode, boot in WRONG_MODELS:
        cal = replace(at_run_speed, boot_s=(at_run_speed.boot_s or 0.0) * boot)
        wrong[label] = Gaps.of(
            real, figures(simulate(cal, jobs_for(cal, [f * transcode for f in factors])))
        )
    wall_only = Gaps.of(real, figures(simulate(before, jobs_for(before, None))))

    boot_cpu = sum(c for _, c in boots) / len(boots) if boots else float("nan")
    print(
        f"\nvalidation: ffmpeg CPU: real {sum(cpu):.2f} s, model {predicted:.2f} s"
        f" ({cpu_gap:+.1%}; before the run {cpu_predicted(before):.2f} s,"
        f" after {cpu_predicted(after):.2f} s)"
        f"\n  wall per CPU second: transcodes {mean_ratio:.2f}"
        f" (per job {', '.join(f'{r:.2f}' for r in ratio)}), boots {boot_ratio:.2f}"
        f"\n  boot CPU: real {boot_cpu:.2f} s, model {calibration.boot_cpu_s:.2f} s;"
        f" boot: real {real.boot.avg:.2f} s, simulated {sim.boot.avg:.2f} s"
        f"\n  average delay: real {real.delay.avg:.2f} s,"
        f" simulated {sim.delay.avg:.2f} s ({gaps.delay:+.1%})"
        f"\n  total busy time: real {real.busy_core_seconds:.2f} s,"
        f" simulated {sim.busy_core_seconds:.2f} s ({gaps.busy:+.1%})"
        f"\n  workers: real {real.workers}, simulated {sim.workers}"
        f"\n  steps (queue, dispatch, download, transcode, upload): real {steps(real_run)},"
        f" simulated {steps(sim_run)}"
        f"\n  wall-time calibration before the run alone: {wall_only}"
        + "".join(f"\n  wrong model, {label}: {g}" for label, g in wrong.items())
    )
    assert abs(cpu_gap) <= TOLERANCE
    assert abs(gaps.delay) <= TOLERANCE
    assert abs(gaps.busy) <= TOLERANCE
    for label, g in wrong.items():
        assert g.worst > TOLERANCE, f"a simulator with {label} passes the comparison: {g}"
