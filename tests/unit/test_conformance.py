"""The controller and the simulator are one lifecycle: a scripted trace fed to both.

The controller (real SQLite, the real event log, a fake clock, a stand-in runtime) is driven
through the calls its API and runtime make (submit, register, report, a runtime's exit
report, reconcile, a restart from its database); the simulator's shell gets the same
stimuli at the same times (``Simulation.feed``). The trace: two jobs (one split in chunks by
right-size), registrations, reports, a chunk whose upload fails (retried alone), a worker
lost in the middle of a task, a job canceled while it runs (its worker drops it and is
idle again), a request attached to an identical one in progress and one served with a
completed job's output (reuse), a restart mid-way (the controller reloads SQLite; the
simulator recovers from the entities it holds), everything to completion, then shutdown.
A second trace splits a streaming ladder in two parts (one part failing and retried alone,
then the packaging): of its renditions for a 40 s movie, in spans of time for a 60 s one.

Compared: every view handed to the policy, every decision, and every line of the event log
(code and fields, in order).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field

import pytest

from dacirco.core.machine import counting_ids
from dacirco.core.stimuli import (
    Cancel,
    Decide,
    Exited,
    Failed,
    Recover,
    Registered,
    Reported,
    Shutdown,
    Submitted,
)
from dacirco.domain import (
    FINAL_JOB_STATES,
    Codec,
    ExitCause,
    JobState,
    Speed,
    TaskState,
    WorkerState,
    task_output,
)
from dacirco.outputs.presets import PRESETS
from dacirco.policies.base import ClusterView, Decisions, Policy
from dacirco.policies.right_size import RightSize
from dacirco.protocol import TaskReport
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from tests.unit.conftest import NODE, Make

META = {"duration": "40", "fps": "25", "frames": "1000"}  # 1080p30-sized work: split first
STEPS = ("started", "downloaded", "transcoded", "uploaded")


@dataclass
class Recorder:
    """The policy as the mechanism sees it: every view in, every decision out."""

    inner: Policy
    calls: list[tuple[ClusterView, Decisions]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def decide(self, view: ClusterView) -> Decisions:
        decisions = self.inner.decide(view)
        self.calls.append((view, decisions))
        return decisions


def policy() -> RightSize:
    return RightSize(split_work=0.1, max_chunks=2)


class Twin:
    """One trace, two shells."""

    def __init__(self, make: Make) -> None:
        self.make = make
        self.ids = counting_ids()
        self.h = make(new_id=self.ids, max_workers=3)
        self.h.controller.storage.put_file(
            "input-videos/bbb_2.mp4", self.h.db.parent / "movie.bin", metadata=META
        )
        self.real = Recorder(policy())
        self.h.controller.policy = self.real
        self.logs = [self.h.log_path]
        self.simulated = Recorder(policy())
        self.sim_ids = counting_ids()  # the same names on both sides
        self.sim = self._simulation()
        self.sim_events: list[tuple[str, dict]] = []

    def _simulation(self) -> Simulation:
        config = self.h.controller.config
        dc = DataCenter(tuple(self.h.runtime.nodes()))
        sim = Simulation(
            # exact: no shortcut (test_sim_run checks that the shortcuts change nothing)
            SimConfig(max_workers=config.max_workers, flavor=config.flavor, exact=True),
            dc,
            Models.build("vm"),
            [],
            policy=self.simulated,  # type: ignore[arg-type]
            log=True,
            core_config=config.core(),
        )
        sim.core.new_id = self.sim_ids
        return sim

    @property
    def now(self) -> float:
        return self.h.clock.now

    def feed(self, stimulus: object) -> None:
        step = self.sim.feed(stimulus, self.now)  # type: ignore[arg-type]
        self.sim_events += [(e.code, e.fields) for e in step.emits]

    def task_of(self, worker_id: str) -> str:
        task_id = self.h.controller.workers[worker_id].task_id
        assert task_id is not None
        assert self.sim.state.workers[worker_id].task_id == task_id
        return task_id

    # ---- the stimuli, to both --------------------------------------------------------
    async def submit(self, movie: str, reuse: bool = True, **streaming: object) -> str:
        job = await self.h.controller.submit(
            movie,
            1000,
            Speed.FAST,
            Codec.H264,
            reuse=reuse,
            **streaming,  # type: ignore[arg-type]
        )
        # As it was submitted (the controller's own may be served already: reuse).
        fresh = dataclasses.replace(
            job,
            state=JobState.WAITING,
            history=[],
            reused_from=None,
            output=None,
            progress=0.0,
            timings={},
        )
        self.feed(Submitted(copy.deepcopy(fresh)))
        return job.id

    async def decide(self) -> None:
        await self.h.controller.reconcile()
        self.feed(Decide())

    async def register_booting(self) -> list[str]:
        booting = [
            w.id for w in self.h.controller.workers.values() if w.state == WorkerState.BOOTING
        ]
        for wid in booting:
            spec = next(s for s in self.h.runtime.specs if s.worker_id == wid)
            await self.h.register(spec)
            self.feed(Registered(wid, NODE, 2, 4.0))
        return booting

    async def report(self, worker_id: str, step: str) -> None:
        task_id = self.task_of(worker_id)
        if step == "uploaded":  # the worker's upload, which the report is checked against
            task = self.h.controller.tasks[task_id]
            self.h.upload(task_output(self.h.controller.jobs[task.job_id], task))
        await self.h.controller.report(self.h.auth(worker_id), task_id, TaskReport(step=step))
        self.feed(Reported(worker_id, task_id, step))

    async def fail(self, worker_id: str, message: str) -> None:
        task_id = self.task_of(worker_id)
        rep = TaskReport(step="failed", error_kind="storage", message=message)
        await self.h.controller.report(self.h.auth(worker_id), task_id, rep)
        self.feed(Failed(worker_id, task_id, "storage", message))

    async def cancel(self, job_id: str, worker_ids: list[str]) -> None:
        """A client cancels a running job; its real workers drop their tasks and poll
        again."""
        await self.h.controller.cancel(job_id)
        for wid in worker_ids:
            assert await self.h.poll(self.h.controller.workers[wid]) is None
        self.feed(Cancel(job_id))

    async def crash(self, worker_id: str) -> None:
        await self.h.runtime.crash(worker_id)
        self.feed(Exited(worker_id, ExitCause.CRASHED, "exited with code 137"))

    async def restart(self) -> None:
        """The controller dies and starts again on its database; the simulator recovers
        from what its core holds."""
        old = self.h
        old.crash()
        self.h = self.make(db=old.db, clock=old.clock, new_id=self.ids, max_workers=3)
        self.h.controller.storage.put_file(
            "input-videos/bbb_2.mp4", self.h.db.parent / "movie.bin", metadata=META
        )
        self.h.runtime.specs = old.runtime.specs
        self.h.controller.policy = self.real
        self.logs.append(self.h.log_path)
        await self.h.controller.recover()
        st = self.sim.state
        saved = copy.deepcopy(
            (tuple(st.jobs.values()), tuple(st.workers.values()), tuple(st.tasks.values()))
        )
        self.sim = self._simulation()
        self.feed(Recover(*saved))

    async def shutdown(self) -> None:
        """The controller stops (its idle workers with it); so does the simulated one."""
        await self.h.controller.close()
        self.feed(Shutdown("controller shutting down"))

    async def busy_to_the_end(self) -> None:
        for wid in [w.id for w in self.h.controller.workers.values() if w.task_id]:
            for step in STEPS:
                self.h.clock.advance(1)
                await self.report(wid, step)

    # ---- what is compared ------------------------------------------------------------
    def real_events(self) -> list[tuple[str, dict]]:
        out = []
        for path in self.logs:
            for line in path.read_text().splitlines():
                record = json.loads(line)
                code = record.pop("code")
                del record["time"], record["description"]
                out.append((code, record))
        return out


async def test_the_controller_and_the_simulator_run_one_lifecycle(make: Make) -> None:
    t = Twin(make)
    a = await t.submit("bbb_2.mp4")  # splittable: frame rate and count known
    b = await t.submit("bbb_1.mp4")
    await t.decide()
    d = await t.submit("bbb_1.mp4")  # identical to b: attached to it, across the restart
    t.h.clock.advance(15)
    assert len(await t.register_booting()) >= 2
    await t.decide()
    busy = [w for w in t.h.controller.workers.values() if w.task_id]
    assert len(busy) >= 2
    chunk_workers = [w.id for w in busy if t.h.controller.tasks[w.task_id or ""].part == "chunk"]
    assert chunk_workers, "right-size splits the long job"
    # A chunk's upload fails: that chunk alone waits again.
    t.h.clock.advance(2)
    await t.report(chunk_workers[0], "started")
    await t.fail(chunk_workers[0], "upload refused")
    await t.decide()
    # A worker is lost in the middle of its task.
    t.h.clock.advance(3)
    lost = next(w.id for w in t.h.controller.workers.values() if w.task_id)
    await t.report(lost, "started")
    await t.crash(lost)
    await t.decide()
    t.h.clock.advance(10)
    await t.register_booting()
    await t.decide()
    # The controller restarts mid-way.
    t.h.clock.advance(5)
    await t.restart()
    c = await t.submit("bbb_2.mp4", reuse=False)  # split, then canceled while chunks run
    for _ in range(12):  # to the end
        await t.decide()
        t.h.clock.advance(15)
        await t.register_booting()
        await t.decide()
        running = [w.id for w in t.h.controller.workers.values() if w.job_id == c]
        if running and t.h.controller.jobs[c].state == JobState.STARTED:
            await t.report(running[0], "started")
            t.h.clock.advance(1)
            await t.cancel(c, running)
        await t.busy_to_the_end()
        t.h.clock.advance(5)
        if all(j.state in FINAL_JOB_STATES for j in t.h.controller.jobs.values()):
            break
    e = await t.submit("bbb_2.mp4")  # identical to a, completed: its output at once
    await t.decide()
    await t.shutdown()

    # Both ran the whole trace to the same end...
    for jobs in (t.h.controller.jobs, t.sim.state.jobs):
        assert {k: j.state for k, j in jobs.items()} == {
            a: JobState.COMPLETED,
            b: JobState.COMPLETED,
            c: JobState.CANCELED,
            d: JobState.COMPLETED,
            e: JobState.COMPLETED,
        }
        assert (jobs[d].reused_from, jobs[e].reused_from) == (b, a)
        assert jobs[d].output == jobs[b].output and jobs[e].output == jobs[a].output
    lost_task = [x for x in t.sim.state.tasks.values() if x.state == TaskState.LOST]
    assert lost_task, "the lost worker's task is in the trace"
    # ... saw the same views, decided the same, and logged the same story.
    assert len(t.real.calls) == len(t.simulated.calls) > 10
    for i, (real, simulated) in enumerate(zip(t.real.calls, t.simulated.calls, strict=True)):
        assert real == simulated, f"policy call {i}"
    real_events, sim_events = t.real_events(), t.sim_events
    assert [c for c, _ in real_events] == [c for c, _ in sim_events]
    assert real_events == sim_events
    codes = {c for c, _ in real_events}
    assert {"EV12", "EV14", "EV15", "EV16", "EV10", "EV7", "EV17", "EV18", "EV19"} <= codes


@pytest.mark.parametrize(
    ("duration", "kind"),
    [("40", "parts of its renditions"), ("60", "spans in time")],
    ids=["renditions", "spans"],
)
async def test_a_ladder_split_in_parts_runs_one_lifecycle(
    make: Make, duration: str, kind: str
) -> None:
    """A streaming job split by the policy: its parts (one failing and retried alone), the
    packaging, the parts' playlists deleted: the same views, decisions and log on both. A
    40 s movie holds one span of at least 20 s of whole 6 s segments: it is split by
    renditions; a 60 s one, in two spans of 30 s."""
    t = Twin(make)
    t.h.controller.storage.put_file(
        "input-videos/bbb_3.mp4",
        t.h.db.parent / "movie.bin",
        metadata={**META, "duration": duration, "width": "1280", "height": "720"},
    )
    ladder = PRESETS["hls-ladder"]  # as the API resolves a preset: its outputs
    job_id = await t.submit("bbb_3.mp4", False, outputs=ladder.outputs, preset="hls-ladder")
    await t.decide()
    t.h.clock.advance(15)
    await t.register_booting()
    await t.decide()
    parts = [w.id for w in t.h.controller.workers.values() if w.task_id]
    assert len(parts) == 2, "right-size splits the ladder in two parts"
    t.h.clock.advance(2)
    await t.report(parts[0], "started")
    await t.fail(parts[0], "upload refused")  # that part alone waits again
    for _ in range(6):
        await t.decide()
        t.h.clock.advance(15)
        await t.register_booting()
        await t.decide()
        await t.busy_to_the_end()
        t.h.clock.advance(5)
        if t.h.controller.jobs[job_id].state in FINAL_JOB_STATES:
            break
    await t.shutdown()

    for jobs in (t.h.controller.jobs, t.sim.state.jobs):
        job = jobs[job_id]
        assert job.state is JobState.COMPLETED and job.output is not None
        assert job.output.endswith("/master.m3u8") and job.chunks == 2
        assert any(h.detail == f"split in 2 {kind}" for h in job.history), job.history
    assert len(t.real.calls) == len(t.simulated.calls) > 3
    for i, (real, simulated) in enumerate(zip(t.real.calls, t.simulated.calls, strict=True)):
        assert real == simulated, f"policy call {i}"
    real_events = t.real_events()
    assert real_events == t.sim_events
    codes = [c for c, _ in real_events]
    assert codes.count("EV15") == 1 and codes.count("EV16") == 2 and "EV10" in codes
    assert codes.count("EV7") == 1  # the packaging's upload is the job's output
    folder = job.output.rpartition("/")[0]
    names = {i.key.rpartition("/")[2] for i in t.h.controller.storage.list(
        f"output-videos/{folder}/", metadata=False)}  # fmt: skip
    assert "master.m3u8" in names and not [n for n in names if n.startswith("master-p")]
