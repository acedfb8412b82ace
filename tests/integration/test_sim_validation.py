"""The simulator against reality: one short scenario played for real (local runtime, real
ffmpeg, minimize-workers, one tiny worker at a time, so that the machine's other core absorbs
what else runs) and in the simulator calibrated on this machine in
the same test (the same arrival times, movies, bitrates and presets). Average delay and total
busy time (sum of the workers' busy intervals) must agree within 20 %."""

from __future__ import annotations

import os
import time
from itertools import pairwise

import psutil
import pytest

from dacirco.analytics.figures import figures
from dacirco.analytics.run import from_log
from dacirco.calibration import catalog_movies, measure
from dacirco.domain import Node
from dacirco.scenario.model import Request
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import CatalogShape, make_jobs
from tests.conftest import TEST_DURATION_SCALE, TEST_MAX_HEIGHT

pytestmark = pytest.mark.slow

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


def steps(run) -> str:  # type: ignore[no-untyped-def]
    """Mean seconds of each step of the completed jobs."""
    done = [j for j in run.jobs if j.uploaded is not None]
    means = []
    for a, b in pairwise(STEPS):
        means.append(sum(getattr(j, b) - getattr(j, a) for j in done) / len(done))
    return " / ".join(f"{m:.2f}" for m in means)


def test_simulated_delay_and_busy_time_match_a_real_run(service_factory, catalog_dir, tmp_path):
    movies = sorted({m for _, m, _, _ in SCENARIO})
    calibration = measure(
        catalog_movies(catalog_dir, movies),
        presets=("fast",),
        threads=(1,),
        repeats=2,
        boot_repeats=3,
    )
    # The real run: the test service's options (--call-interval 0.2) plus these.
    svc = service_factory(
        "--algorithm", "minimize-workers", "--max-workers", "1", "--flavor", "tiny"
    )
    t0 = time.monotonic()
    ids = []
    for at, movie, bitrate, speed in SCENARIO:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        ids.append(svc.submit(id_video=movie, bitrate=bitrate, speed=speed))
    for job_id in ids:
        assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=60) == "Completed"
    svc.wait_for(lambda: set(svc.worker_states().values()) == {"Stopped"}, 20, "workers stopped")
    svc.stop()
    real_run = from_log(svc.event_log)
    real = figures(real_run)
    assert real.completed == len(SCENARIO)

    # The simulated run: the same arrivals (as the real controller received them).
    first = min(j.received for j in real_run.jobs)
    by_id = {j.job_id: j for j in real_run.jobs}
    received = [by_id[i].received - first for i in ids]
    requests = [
        Request(delay=t - (received[k - 1] if k else 0.0), movie=m, bitrate=b, speed=s)
        for k, (t, (_, m, b, s)) in enumerate(zip(received, SCENARIO, strict=True))
    ]
    models = Models.build("local", calibration)
    jobs = make_jobs(
        requests, models, seed=1, catalog=CatalogShape(TEST_DURATION_SCALE, TEST_MAX_HEIGHT)
    )
    node = Node("local", os.cpu_count() or 1, psutil.virtual_memory().total / 2**30)
    config = SimConfig(
        algorithm="minimize-workers",
        flavor="tiny",
        max_workers=1,
        call_interval=0.2,
        runtime="local",
    )
    sim_run = Simulation(config, DataCenter((node,)), models, jobs, seed=1).run().run
    sim = figures(sim_run)
    assert sim.completed == len(SCENARIO)

    delay_gap = (sim.delay.avg - real.delay.avg) / real.delay.avg
    busy_gap = (sim.busy_core_seconds - real.busy_core_seconds) / real.busy_core_seconds
    cal = f"calibration boot {calibration.boot_s:.2f} s, noise cv {calibration.noise_cv:.3f}"
    print(
        f"\nvalidation: {cal}"
        f"\n  average delay: real {real.delay.avg:.2f} s,"
        f" simulated {sim.delay.avg:.2f} s ({delay_gap:+.1%})"
        f"\n  total busy time: real {real.busy_core_seconds:.2f} s,"
        f" simulated {sim.busy_core_seconds:.2f} s ({busy_gap:+.1%})"
        f"\n  boot: real {real.boot.avg:.2f} s, simulated {sim.boot.avg:.2f} s;"
        f" workers: real {real.workers}, simulated {sim.workers}"
        f"\n  steps (queue, dispatch, download, transcode, upload): real {steps(real_run)},"
        f" simulated {steps(sim_run)}"
    )
    assert abs(delay_gap) <= TOLERANCE
    assert abs(busy_gap) <= TOLERANCE
