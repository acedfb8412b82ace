"""A job's own figures (GET /jobs/{id} `figures`), from a run of the core with known times."""

from __future__ import annotations

from dacirco.api.job_figures import job_figures
from dacirco.core.machine import Core
from dacirco.core.stimuli import Decide, Exited, Registered, Reported, Submitted
from dacirco.domain import ExitCause
from tests.unit.test_core import job, launched, new_core


def test_figures_split_a_jobs_time_and_list_each_attempt_with_its_reason(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)  # received at 0
    (first,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(first.worker_id, "n1", 2, 4.0), 10.0)  # booted in 10 s
    core.handle(Decide(), 10.5)  # assigned: 10.5 s of queue, 10 of them a boot
    task1 = core.state.workers[first.worker_id].task_id or ""
    core.handle(Reported(first.worker_id, task1, "started"), 11.0)
    core.handle(Exited(first.worker_id, ExitCause.CRASHED, "killed by a test"), 12.0)
    (second,) = launched(core.handle(Decide(), 12.0))
    core.handle(Registered(second.worker_id, "n1", 2, 4.0), 20.0)
    core.handle(Decide(), 20.0)
    task2 = core.state.workers[second.worker_id].task_id or ""
    for step, at in (("started", 20.0), ("downloaded", 21.0), ("transcoded", 25.0)):
        core.handle(Reported(second.worker_id, task2, step), at)
    core.handle(Reported(second.worker_id, task2, "uploaded"), 25.5)

    st = core.state
    tasks = [st.tasks[t] for t in st.job_tasks["j1"]]
    f = job_figures(st.jobs["j1"], tasks, st.workers, now=30.0)
    assert (f.queue, f.boot) == (10.5, 10.0)
    assert (f.download, f.transcode, f.upload) == (1.0, 4.0, 0.5)
    assert (f.flavor, f.node) == ("small", "n1")
    # 2 cores: 1.5 s held by the lost attempt, 5.5 s by the one that completed.
    assert f.core_seconds == 2 * (1.5 + 5.5)
    lost, done = f.attempts
    assert (lost.state, lost.reason, lost.worker_id) == (
        "Lost",
        "killed by a test",
        first.worker_id,
    )
    assert (done.state, done.reason, done.transcode) == ("Done", None, 4.0)
    assert lost.core_seconds == 3.0 and done.core_seconds == 11.0


def test_a_job_never_assigned_has_no_attempt_and_no_queue_yet(cores: list[Core]) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    f = job_figures(core.state.jobs["j1"], [], core.state.workers, now=5.0)
    assert (f.queue, f.boot, f.core_seconds, f.attempts) == (None, None, 0.0, [])
