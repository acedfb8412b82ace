"""Named errors of the core and the controller; the API maps each to one HTTP status."""

from __future__ import annotations


class ControllerError(Exception):
    status = 400


class NotFound(ControllerError):
    status = 404


class InvalidRequest(ControllerError):
    """The request names something that is not acceptable (an unknown movie, ...)."""

    status = 422


class StorageUnavailable(ControllerError):
    status = 503


class NotReady(ControllerError):
    """The output of a job that is not completed."""

    status = 409


class Conflict(ControllerError):
    """The job's state does not allow it (canceling a completed job, ...)."""

    status = 409


class ReportRefused(ControllerError):
    """A worker's report that contradicts what the controller knows (an upload that is not
    in the storage, or not as big as the worker says): the worker fails its task."""

    status = 422


class WorkerAuthError(ControllerError):
    status = 401


class TaskNotYours(ControllerError):
    status = 409


class WorkerGone(ControllerError):
    status = 410


class QueueFull(ControllerError):
    """Too many jobs already wait: come back in ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotStored(ControllerError):
    """A step could not be written (SQLite or the event log refused it): nothing of it took
    effect; try again in ``retry_after`` seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
