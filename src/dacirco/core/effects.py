"""What the core asks its shell to do once a step is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dacirco.domain import Flavor, Job, Task, Worker
from dacirco.policies.base import Decisions


@dataclass(frozen=True, slots=True)
class Launch:
    """Start this worker (its row is stored, EV2 logged)."""

    worker_id: str
    name: str
    flavor: Flavor
    node: str


@dataclass(frozen=True, slots=True)
class Halt:
    """This worker is stopped in the books: stop its process, forget its token."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class Wake:
    """This worker has a task waiting for it, or has to go: answer its long-poll."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Objects no longer needed (a split job's chunks once merged): best effort. An output
    name in a folder (a streaming job's main file) stands for its whole folder, unless
    ``files``: then each name is one file (a ladder's parts' playlists once packaged)."""

    names: tuple[str, ...]
    files: bool = False


@dataclass(frozen=True, slots=True)
class Emit:
    """One line of the event log."""

    code: str
    at: float
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Forget:
    """Jobs (with their tasks) and workers that retention removed from the core: their rows
    go in the step's transaction; ``objects``, once it is stored, from the storage."""

    jobs: tuple[Job, ...] = ()
    tasks: tuple[Task, ...] = ()
    workers: tuple[Worker, ...] = ()
    objects: tuple[str, ...] = ()


Action = Launch | Halt | Wake | Delete


@dataclass(slots=True)
class Step:
    """One step's outcome: its log lines, its actions, the policy's last decisions."""

    emits: list[Emit] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    decisions: Decisions | None = None
    refused: list[str] = field(default_factory=list)  # decisions the checks refused, why
    log: bool = True  # False: no event lines are made (a simulation without a log)
    forget: Forget | None = None  # what an ``Expire`` step removed
