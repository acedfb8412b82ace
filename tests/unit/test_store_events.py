"""The SQLite Store keeps every field of jobs, workers and tasks; the event log keeps SPEC §6."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from dacirco.controller.events import EVENTS, EventLog, config_path, next_free_path
from dacirco.controller.store import Store
from dacirco.domain import (
    FLAVORS,
    Codec,
    Job,
    JobState,
    Speed,
    Task,
    TaskState,
    Transition,
    Worker,
    WorkerState,
)

T0 = 1_700_000_000.0

# SPEC §6: the classic codes keep their description and fields.
SPEC_EVENTS = {
    "EV1": ("Request received", {"request_id", "input_video", "bitrate", "speed"}),
    "EV2": ("Runner created", {"name", "worker_id"}),
    "EV3": ("Task assigned", {"request_id", "worker_id", "task_id"}),
    "EV4": ("Task started", {"request_id", "worker_id", "task_id"}),
    "EV5": ("File downloaded", {"request_id", "worker_id", "task_id"}),
    "EV6": ("Transcoding completed", {"request_id", "worker_id", "task_id"}),
    "EV7": ("File uploaded", {"request_id", "worker_id", "task_id"}),
    "EV8": ("Runner destroyed", {"name", "worker_id"}),
    "EV9": ("Transcoding error", {"worker_id", "task_id", "error_message"}),
    "EV10": ("Storage error", {"worker_id", "task_id", "error_message"}),
    "EV11": ("Runner registered", {"name", "worker_id", "node", "cpus", "memory"}),
}


def full_job() -> Job:
    """A job with no field left at its default."""
    return Job(
        id="job-1",
        id_video="bbb_7.mp4",
        bitrate=4649,
        speed=Speed.FAST,
        received_at=T0,
        codec=Codec.HEVC,
        state=JobState.ERROR,
        attempts=2,
        max_attempts=5,
        worker_id="w-1",
        task_id="t-1",
        output="bbb_7-4649k-fast-job-1.mp4",
        error="gave up",
        errors=["storage error: S3 down", "worker lost"],
        input_size=123_456,
        input_duration=9.5,
        progress=0.25,
        timings={"assigned": T0 + 1, "started": T0 + 2.5},
        history=[Transition("Started", T0 + 1, "assigned to w-1"), Transition("Error", T0 + 9)],
    )


def full_worker() -> Worker:
    return Worker(
        id="w-1",
        name="dacirco-worker-007",
        flavor=FLAVORS["medium"],
        created_at=T0,
        state=WorkerState.STOPPED,
        node="compute2",
        cpus=4,
        memory_gb=7.5,
        registered_at=T0 + 16.6,
        stopped_at=T0 + 99,
        idle_since=T0 + 50,
        job_id="job-1",
        task_id="t-1",
        last_seen=T0 + 98,
        jobs_done=3,
        stop_reason="idle for 60 s",
        history=[Transition("Idle", T0 + 16.6, "registered"), Transition("Stopped", T0 + 99)],
    )


def full_task() -> Task:
    return Task(
        id="t-1",
        job_id="job-1",
        worker_id="w-1",
        assigned_at=T0 + 1,
        state=TaskState.FAILED,
        timings={"started": T0 + 2, "downloaded": T0 + 3},
        worker_seconds={"downloaded": 0.8},
        error="S3 down",
    )


@pytest.fixture
async def store(fast_tmp: Path):  # type: ignore[no-untyped-def]
    s = Store(fast_tmp / "sub" / "dacirco.sqlite")  # the parent folder is created
    yield s
    s.close()


async def reopen(store: Store) -> tuple[list[Job], list[Worker], list[Task]]:
    fresh = Store(store.path)
    try:
        return await fresh.load()
    finally:
        fresh.close()


# ---- Store ------------------------------------------------------------------------------
async def test_store_round_trip_keeps_every_field(store: Store) -> None:
    job, worker, task = full_job(), full_worker(), full_task()
    await store.save(jobs=(job,), workers=(worker,), tasks=(task,))
    jobs, workers, tasks = await reopen(store)
    assert (jobs, workers, tasks) == ([job], [worker], [task])
    loaded = jobs[0]
    assert (type(loaded.speed), type(loaded.codec), type(loaded.state)) == (Speed, Codec, JobState)
    assert type(workers[0].state) is WorkerState and type(tasks[0].state) is TaskState
    assert workers[0].flavor is not FLAVORS["medium"] and workers[0].flavor == FLAVORS["medium"]


async def test_store_upserts_and_loads_in_insertion_order(store: Store) -> None:
    first = Job("a", "bbb_1.mp4", 1000, Speed.ULTRAFAST, T0)
    second = Job("b", "bbb_2.mp4", 2000, Speed.FAST, T0 - 5)  # older, but saved later
    await store.save(jobs=(first, second))
    first.transition(JobState.STARTED, T0 + 1, "assigned")
    await store.save(jobs=(first,))
    jobs, _, _ = await store.load()
    assert [(j.id, j.state) for j in jobs] == [("a", JobState.STARTED), ("b", JobState.WAITING)]
    assert jobs[0].history == [Transition("Started", T0 + 1, "assigned")]


async def test_a_closed_store_refuses_writes(fast_tmp: Path) -> None:
    store = Store(fast_tmp / "closed.sqlite")
    store.close()
    with pytest.raises(RuntimeError):
        await store.save(jobs=(full_job(),))


# ---- event log file names ---------------------------------------------------------------
def test_next_free_path_takes_the_first_free_number(fast_tmp: Path) -> None:
    assert next_free_path(fast_tmp) == fast_tmp / "tc-events-01.txt"
    (fast_tmp / "tc-events-01.txt").touch()
    assert next_free_path(fast_tmp) == fast_tmp / "tc-events-02.txt"
    (fast_tmp / "tc-events-03.txt").touch()
    assert next_free_path(fast_tmp) == fast_tmp / "tc-events-02.txt"


def test_next_free_path_names_the_option_when_all_are_taken(fast_tmp: Path) -> None:
    for n in range(1, 100):
        (fast_tmp / f"tc-events-{n:02d}.txt").touch()
    with pytest.raises(FileExistsError, match="--event-log-file"):
        next_free_path(fast_tmp)


def test_the_config_file_sits_beside_the_log(fast_tmp: Path) -> None:
    log = EventLog(fast_tmp / "tc-events-07.txt", lambda: T0)
    written = log.write_config({"algorithm": "grace-period", "max_workers": 2})
    log.close()
    assert written == config_path(fast_tmp / "tc-events-07.txt")
    assert written.name == "tc-events-07.config.txt"
    assert json.loads(written.read_text()) == {"algorithm": "grace-period", "max_workers": 2}


# ---- event log lines ----------------------------------------------------------------------
@pytest.fixture
def event_log(fast_tmp: Path):  # type: ignore[no-untyped-def]
    log = EventLog(fast_tmp / "tc-events-01.txt", lambda: T0 + 0.5)
    yield log
    log.close()


def lines(log: EventLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def test_the_classic_codes_keep_the_spec_descriptions_and_fields() -> None:
    for code, (description, fields) in SPEC_EVENTS.items():
        assert EVENTS[code][0] == description
        assert set(EVENTS[code][1]) == fields, code


def test_each_line_is_json_with_time_code_description_and_fields(event_log: EventLog) -> None:
    event_log.emit("EV2", name="dacirco-worker-001", worker_id="w-1")
    event_log.emit("EV1", request_id="r", input_video="bbb_5.mp4", bitrate=7000, speed="fast")
    first, second = lines(event_log)
    assert first == {
        "time": first["time"],
        "code": "EV2",
        "description": "Runner created",
        "name": "dacirco-worker-001",
        "worker_id": "w-1",
    }
    assert datetime.fromisoformat(first["time"]).timestamp() == T0 + 0.5
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None  # not a naive time
    assert (second["code"], second["bitrate"], second["speed"]) == ("EV1", 7000, "fast")


def test_emit_refuses_an_event_missing_a_field_and_writes_nothing(event_log: EventLog) -> None:
    with pytest.raises(ValueError, match="EV3 needs task_id"):
        event_log.emit("EV3", request_id="r", worker_id="w")
    assert lines(event_log) == []


def test_lines_are_appended_to_an_existing_log(fast_tmp: Path) -> None:
    path = fast_tmp / "tc-events-01.txt"
    for name in ("first", "second"):
        log = EventLog(path, lambda: T0)
        log.emit("EV8", name=name, worker_id="w")
        log.close()
    assert [json.loads(line)["name"] for line in path.read_text().splitlines()] == [
        "first",
        "second",
    ]
