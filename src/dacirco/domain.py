"""Jobs, tasks, workers, flavors and their states: plain data with one transition table each.

Nothing here does I/O or reads a clock; every time is passed in by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    WAITING = "Waiting"
    STARTED = "Started"
    COMPLETED = "Completed"
    ERROR = "Error"
    CANCELED = "Canceled"


FINAL_JOB_STATES = frozenset({JobState.COMPLETED, JobState.ERROR, JobState.CANCELED})


class WorkerState(StrEnum):
    BOOTING = "Booting"
    IDLE = "Idle"
    BUSY = "Busy"
    STOPPED = "Stopped"


class TaskState(StrEnum):
    ASSIGNED = "Assigned"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    LOST = "Lost"
    CANCELED = "Canceled"  # its job was canceled: the worker drops it and says so


class ExitCause(StrEnum):
    """Why a worker ended without being asked to, as a runtime reports it."""

    CRASHED = "crashed"  # its process, pod or server ended: the worker is lost
    NO_CAPACITY = "no capacity"  # the cloud found no room for it: not the job's fault
    STOPPED = "stopped"  # it ended as asked (or while the service shuts down)


class Speed(StrEnum):
    """x264/x265 presets a client may ask for."""

    ULTRAFAST = "ultrafast"
    FAST = "fast"


class Codec(StrEnum):
    """Output video codec; h264 (libx264) unless the client asks for hevc (libx265)."""

    H264 = "h264"
    HEVC = "hevc"


MIN_PRIORITY, MAX_PRIORITY = -50, 50
MIN_BITRATE_KBPS = 500
MAX_BITRATE_KBPS = 8000

# A movie name is one path component: letters, digits, dot, dash, underscore; no leading dot.
MOVIE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


def valid_movie_name(name: str) -> bool:
    return bool(MOVIE_NAME_RE.fullmatch(name)) and ".." not in name


@dataclass(frozen=True)
class Flavor:
    name: str
    cpus: int
    memory_gb: float


FLAVORS: dict[str, Flavor] = {
    "tiny": Flavor("tiny", 1, 2.0),
    "small": Flavor("small", 2, 4.0),
    "medium": Flavor("medium", 4, 8.0),
}
DEFAULT_FLAVOR = "small"


class IllegalTransition(ValueError):
    """A state change that the entity's transition table refuses."""


JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # Started -> Waiting is a requeue after a lost worker or a retryable failure.
    # Waiting -> Completed: a request served with another job's output (reuse).
    JobState.WAITING: frozenset(
        {JobState.STARTED, JobState.COMPLETED, JobState.ERROR, JobState.CANCELED}
    ),
    JobState.STARTED: frozenset(
        {JobState.WAITING, JobState.COMPLETED, JobState.ERROR, JobState.CANCELED}
    ),
    JobState.COMPLETED: frozenset(),
    JobState.ERROR: frozenset(),
    JobState.CANCELED: frozenset(),
}

WORKER_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.BOOTING: frozenset({WorkerState.IDLE, WorkerState.STOPPED}),
    WorkerState.IDLE: frozenset({WorkerState.BUSY, WorkerState.STOPPED}),
    WorkerState.BUSY: frozenset({WorkerState.IDLE, WorkerState.STOPPED}),
    WorkerState.STOPPED: frozenset(),
}

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.ASSIGNED: frozenset(
        {TaskState.RUNNING, TaskState.FAILED, TaskState.LOST, TaskState.CANCELED}
    ),
    TaskState.RUNNING: frozenset(
        {TaskState.DONE, TaskState.FAILED, TaskState.LOST, TaskState.CANCELED}
    ),
    TaskState.DONE: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.LOST: frozenset(),
    TaskState.CANCELED: frozenset(),
}


@dataclass
class Transition:
    state: str
    at: float
    detail: str = ""


def _check(table: dict[Any, frozenset[Any]], kind: str, ident: str, old: Any, new: Any) -> None:
    if new not in table[old]:
        raise IllegalTransition(f"{kind} {ident}: {old} -> {new} is not allowed")


@dataclass
class Job:
    id: str
    id_video: str
    bitrate: int  # kbit/s
    speed: Speed
    received_at: float
    codec: Codec = Codec.H264
    priority: int = 0  # MIN_PRIORITY..MAX_PRIORITY: higher is served first (with aging)
    callback_url: str | None = None  # where this job's changes are posted (webhooks)
    reuse: bool = True  # may be served with the output of an identical job (reuse_key)
    reused_from: str | None = None  # the job whose output it has, or waits for (attached)
    state: JobState = JobState.WAITING
    attempts: int = 0
    max_attempts: int = 3
    worker_id: str | None = None
    task_id: str | None = None
    output: str | None = None  # output object name under output-videos/
    error: str | None = None
    errors: list[str] = field(default_factory=list)  # one reason per failed attempt
    input_size: int | None = None
    input_duration: float | None = None  # seconds, from the catalog's probe
    input_pixel_rate: float | None = None  # width x height x frames per second, likewise
    input_fps: float | None = None  # likewise
    input_frames: int | None = None  # likewise
    chunks: int = 0  # split in this many chunks (0: encoded whole)
    chunks_done: list[int] = field(default_factory=list)  # indexes (1..chunks) uploaded
    progress: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # step name -> time
    history: list[Transition] = field(default_factory=list)

    def transition(self, new: JobState, at: float, detail: str = "") -> None:
        _check(JOB_TRANSITIONS, "job", self.id, self.state, new)
        self.state = new
        self.history.append(Transition(new.value, at, detail))


@dataclass
class Worker:
    id: str
    name: str
    flavor: Flavor
    created_at: float
    state: WorkerState = WorkerState.BOOTING
    node: str | None = None
    cpus: int | None = None  # as reported by the worker when it registers
    memory_gb: float | None = None
    registered_at: float | None = None
    stopped_at: float | None = None
    idle_since: float | None = None
    job_id: str | None = None
    task_id: str | None = None
    last_seen: float | None = None
    jobs_done: int = 0
    stop_reason: str | None = None
    history: list[Transition] = field(default_factory=list)

    def transition(self, new: WorkerState, at: float, detail: str = "") -> None:
        _check(WORKER_TRANSITIONS, "worker", self.id, self.state, new)
        self.state = new
        self.history.append(Transition(new.value, at, detail))


@dataclass
class Task:
    """One attempt at a job on one worker."""

    id: str
    job_id: str
    worker_id: str
    assigned_at: float
    state: TaskState = TaskState.ASSIGNED
    timings: dict[str, float] = field(default_factory=dict)  # step -> controller time
    worker_seconds: dict[str, float] = field(default_factory=dict)  # step -> worker's own timing
    error: str | None = None
    part: str | None = None  # None: the whole job; "chunk" or "merge" of a split job
    index: int = 0  # a chunk's index, 1..chunks
    ended_at: float | None = None  # when it was done, failed or lost

    def transition(self, new: TaskState, at: float, detail: str = "") -> None:
        _check(TASK_TRANSITIONS, "task", self.id, self.state, new)
        self.state = new
        if new in (TaskState.DONE, TaskState.FAILED, TaskState.LOST, TaskState.CANCELED):
            self.ended_at = at


def output_name(job: Job) -> str:
    """Output object name: the job id keeps outputs of the same movie apart."""
    stem = job.id_video.rsplit(".", 1)[0]
    return f"{stem}-{job.bitrate}k-{job.speed.value}-{job.id}.mp4"


ReuseKey = tuple[str, int, str, str, int | None]


def reuse_key(job: Job) -> ReuseKey:
    """What makes two requests ask for the same output: the movie as stored (its name and
    size, so that a movie replaced in the catalog is not confused with the old one) and
    every output parameter."""
    return (job.id_video, job.bitrate, job.speed.value, job.codec.value, job.input_size)


def chunk_name(job: Job, index: int) -> str:
    """A chunk's object name, beside the outputs until the merge has used it."""
    return f"_chunk-{job.id}-{index}.mp4"


@dataclass(frozen=True)
class Node:
    """A machine a runtime can place workers on, with its capacity."""

    name: str
    cpus: int
    memory_gb: float
