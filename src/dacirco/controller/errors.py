"""Named errors of the controller; the API maps each to one HTTP status."""

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


class WorkerAuthError(ControllerError):
    status = 401


class TaskNotYours(ControllerError):
    status = 409


class WorkerGone(ControllerError):
    status = 410
