"""Jobs, tasks, workers, flavors and their states: plain data with one transition table each.

Nothing here does I/O or reads a clock; every time is passed in by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dacirco.outputs.names import digest, main_file, output_dir
from dacirco.outputs.part_files import part_main
from dacirco.outputs.parts import Plan, layout


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
    # Its host's owner needed the machine back (a pilot on an opportunistic node): not the
    # job's fault, its task waits again without counting an attempt.
    PREEMPTED = "preempted"


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

# How long a movie's name may be: every name made from it must fit every limit it meets
# later. The tightest is a file name, 255 bytes on Linux (an S3 key may have 1024, a signed
# URL several thousand). The longest file name made from a movie's name is its output being
# uploaded to the local storage, ".<output name>.<32 hex digits>.part" (storage.base.
# part_path), and output_name adds at most "-8000k-ultrafast-<job id>.mp4" to the movie's
# name. Names are checked once, where they enter (catalog add, job submission), so that
# none fails later, on a worker's poll.
MAX_FILE_NAME = 255  # bytes; names are ASCII: one byte a character
PART_NAME_EXTRA = len("..") + 32 + len(".part")  # 39: an upload in progress
MAX_OBJECT_NAME = MAX_FILE_NAME - PART_NAME_EXTRA  # 216: any object's name (storage keys)
JOB_ID_LENGTH = 36  # the controller's job ids: str(uuid.uuid4())
OUTPUT_NAME_EXTRA = len(f"-{MAX_BITRATE_KBPS}k-{max(Speed, key=len)}-.mp4") + JOB_ID_LENGTH
MAX_MOVIE_NAME = MAX_OBJECT_NAME - OUTPUT_NAME_EXTRA  # 159

# A movie name is one path component: letters, digits, dot, dash, underscore; no leading dot.
MOVIE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def movie_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a movie of the catalog, in a few words, or None if it can."""
    if len(name) > MAX_MOVIE_NAME:
        return (
            f"too long: {len(name)} characters, at most {MAX_MOVIE_NAME} (the names of its "
            f"outputs must fit in a {MAX_FILE_NAME}-byte file name)"
        )
    if not MOVIE_NAME_RE.fullmatch(name) or ".." in name:
        return (
            "must be a movie file name such as bbb_5.mp4 (no path: letters, digits, "
            "'.', '-', '_'; no leading dot, no '..')"
        )
    return None


def valid_movie_name(name: str) -> bool:
    return movie_name_problem(name) is None


def shown(name: str, limit: int = 40) -> str:
    """A name in a message: quoted, and cut if it is long."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}… ({len(name)} characters)"


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


@dataclass(slots=True)  # one per change of every job and worker: kept small
class Transition:
    state: str
    at: float
    detail: str = ""


def _check(table: dict[Any, frozenset[Any]], kind: str, ident: str, old: Any, new: Any) -> None:
    if new not in table[old]:
        raise IllegalTransition(f"{kind} {ident}: {old} -> {new} is not allowed")


# Slots: a run keeps one Job and one Task per request (a simulated million of them), and a
# Job's 30-odd fields are past what an instance dict shares its keys for (30): each Job would
# carry a dict of its own, three times its size and slower to make.
@dataclass(slots=True)
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
    input_height: float | None = None  # pixels, likewise (a ladder's parts weigh by it)
    preset: str | None = None  # the preset its outputs come from (outputs.presets)
    # Streaming outputs (outputs.spec.OutputSpec as JSON), fitted to the input; None: the
    # classic single MP4 at ``bitrate``, which is then the sum of every rendition's bitrates.
    outputs: list[dict[str, Any]] | None = None
    quality: bool = False  # measure VMAF, PSNR and SSIM of its video renditions
    thumbnails: dict[str, Any] | None = None  # outputs.spec.ThumbnailSpec as JSON, or none
    # What its worker measured (protocol.QualityReport as JSON): renditions, seconds.
    quality_figures: dict[str, Any] | None = None
    # Its encoding work as a multiple of one encode of its input (policies.work): a ladder
    # counts each rendition by its pixels; measuring its quality adds ``QUALITY_COST``.
    work_share: float = 1.0
    chunks: int = 0  # split in this many chunks (0: encoded whole)
    chunks_done: list[int] = field(default_factory=list)  # indexes (1..chunks) uploaded
    progress: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # step name -> time
    history: list[Transition] = field(default_factory=list)

    def ready_at(self) -> float | None:
        """When its output was ready: uploaded by its worker, or another job's reused."""
        if self.state is not JobState.COMPLETED:
            return None
        return self.timings.get("uploaded", self.timings.get("reused"))

    def transition(self, new: JobState, at: float, detail: str = "") -> None:
        _check(JOB_TRANSITIONS, "job", self.id, self.state, new)
        self.state = new
        self.history.append(Transition(new._value_, at, detail))


@dataclass(slots=True)
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
    preemptible: bool = False  # placed on an opportunistic node (a node agent's pilot)
    preempted: bool = False  # it ended because its host's owner took the machine back
    history: list[Transition] = field(default_factory=list)

    def transition(self, new: WorkerState, at: float, detail: str = "") -> None:
        _check(WORKER_TRANSITIONS, "worker", self.id, self.state, new)
        self.state = new
        self.history.append(Transition(new._value_, at, detail))


@dataclass(slots=True)
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
    preempted: bool = False  # lost to a preemption of its worker: no attempt counted

    def transition(self, new: TaskState, at: float, detail: str = "") -> None:
        _check(TASK_TRANSITIONS, "task", self.id, self.state, new)
        self.state = new
        if new in (TaskState.DONE, TaskState.FAILED, TaskState.LOST, TaskState.CANCELED):
            self.ended_at = at


def output_name(job: Job) -> str:
    """Output object name: the job id keeps outputs of the same movie apart. A job with
    streaming outputs has a folder of files; this names its main one (``<folder>/<file>``)."""
    if job.outputs:
        return f"{output_dir(job.id_video, job.id)}/{main_file(job.outputs)}"
    stem = job.id_video.rsplit(".", 1)[0]
    return f"{stem}-{job.bitrate}k-{job.speed._value_}-{job.id}.mp4"


ReuseKey = tuple[str, int, str, str, int | None]


def reuse_key(job: Job) -> ReuseKey:
    """What makes two requests ask for the same output: the movie as stored (its name and
    size, so that a movie replaced in the catalog is not confused with the old one) and
    every output parameter (streaming outputs by their fingerprint, beside the codec, and
    whether it asks for its quality and its thumbnails)."""
    codec = job.codec._value_
    if job.outputs:
        codec = f"{codec}+{digest(job.outputs)}"
    if job.quality:  # its figures are part of what it asks for
        codec = f"{codec}+quality"
    if job.thumbnails:
        codec = f"{codec}+thumbnails{job.thumbnails.get('every', 0):g}"
    return (job.id_video, job.bitrate, job.speed._value_, codec, job.input_size)


def chunk_name(job: Job, index: int) -> str:
    """A chunk's object name, beside the outputs until the merge has used it."""
    return f"_chunk-{job.id}-{index}.mp4"


def rendition_parts(job: Job) -> Plan:
    """A streaming job split in parts: what each part makes (``outputs.parts.layout``)."""
    assert job.outputs is not None
    return layout(
        job.outputs,
        bool(job.thumbnails),
        job.input_height,
        job.chunks,
        job.input_duration,
    )


def task_output(job: Job, task: Task) -> str:
    """The name of the object a task uploads (last): a chunk, or the job's output (whole,
    merge); a part of a streaming job, the file it uploads last into the job's folder."""
    if task.part != "chunk":
        return output_name(job)
    if job.outputs:
        main = part_main(job.outputs, rendition_parts(job), task.index)
        return f"{output_dir(job.id_video, job.id)}/{main}"
    return chunk_name(job, task.index)


@dataclass(frozen=True)
class Node:
    """A machine a runtime can place workers on, with its capacity."""

    name: str
    cpus: int
    memory_gb: float
    # Capacity that is not ours (a node agent's idle machine): free, but its workers may be
    # preempted at any time when the owner's load comes back.
    opportunistic: bool = False
