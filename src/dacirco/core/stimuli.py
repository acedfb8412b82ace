"""What happens to the core: each stimulus is one step of ``Core.handle``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dacirco.domain import ExitCause, Job, ReuseKey, Task, Worker


@dataclass(frozen=True, slots=True)
class Submitted:
    """A client's job, already validated and probed by the shell."""

    job: Job


@dataclass(frozen=True, slots=True)
class Registered:
    worker_id: str
    node: str
    cpus: int
    memory_gb: float


@dataclass(frozen=True, slots=True)
class Reported:
    """A worker's step: started, downloaded, transcoded or uploaded (progress is no step)."""

    worker_id: str
    task_id: str
    step: str
    seconds: float | None = None  # the worker's own timing of the step
    quality: dict[str, Any] | None = None  # transcoded: what it measured (QualityReport)


@dataclass(frozen=True, slots=True)
class ReportedSteps:
    """Several steps of one task reported in one step of the core, each at its own time (in
    order): what ``Reported`` one after the other would do when the steps before the last
    change nothing but the task's and the job's timings (the simulator, which learns a
    task's steps at once)."""

    worker_id: str
    task_id: str
    steps: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Failed:
    """A worker's task failed: ``kind`` transcoding (no retry helps), storage or internal;
    or the shell could not hand it out, ``kind`` unrunnable (its names or URLs cannot be
    made: no retry helps). ``input_gone``: the shell found the movie gone from the catalog
    (no retry helps either)."""

    worker_id: str
    task_id: str
    kind: str
    message: str
    input_gone: bool = False


@dataclass(frozen=True, slots=True)
class Exited:
    """A worker ended without the core asking (as the runtime reports it), or was found
    dead by the shell (``CRASHED`` with the reason)."""

    worker_id: str
    cause: ExitCause
    reason: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """A client cancels a job: it ends at once; its workers are told to drop their tasks."""

    job_id: str
    reason: str = "canceled by the client"


@dataclass(frozen=True, slots=True)
class Released:
    """A worker dropped the task of a canceled job (it asks for the next one): idle again."""

    worker_id: str
    task_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: workers that never registered, or fell silent (``Worker.last_seen``,
    the shell's heartbeats), are lost; then the policy decides (unless ``decide`` is off)."""

    decide: bool = True


@dataclass(frozen=True, slots=True)
class Decide:
    """Ask the policy, check and apply its decisions."""


@dataclass(frozen=True, slots=True)
class Recover:
    """What a previous run left in the store: loaded, then made consistent (its workers are
    gone, their jobs and open parts wait again)."""

    jobs: tuple[Job, ...]
    workers: tuple[Worker, ...]
    tasks: tuple[Task, ...]
    finished: Finished | None = None  # the finished jobs the store holds and did not load


@dataclass(frozen=True, slots=True)
class Finished:
    """The finished jobs a restart leaves in the store, as much as the core needs of them:
    the outputs identical requests may reuse (reuse key, job id, output name) and when each
    job ended (job id, time, the job whose output it reused), oldest first."""

    outputs: tuple[tuple[ReuseKey, str, str | None], ...] = ()
    ended: tuple[tuple[str, float, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Expire:
    """Retention: forget, oldest first, up to ``limit`` jobs and workers that ended before
    ``cutoff`` (``core/retention.py``; only with ``CoreConfig.retention``)."""

    cutoff: float
    limit: int = 500
    # The jobs due that memory no longer holds, read from the store with their tasks (None:
    # the store has no readable row of it).
    stored: Mapping[str, tuple[Job, Sequence[Task]] | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Every worker stops; their jobs wait again without losing an attempt."""

    reason: str


Stimulus = (
    Submitted
    | Registered
    | Reported
    | ReportedSteps
    | Failed
    | Exited
    | Cancel
    | Released
    | Tick
    | Decide
    | Recover
    | Expire
    | Shutdown
)
