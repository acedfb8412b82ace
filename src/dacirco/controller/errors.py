"""Named errors of the controller (defined with the core that raises most of them); the API
maps each to one HTTP status."""

from dacirco.core.errors import (
    ControllerError,
    InvalidRequest,
    NotFound,
    NotReady,
    NotStored,
    QueueFull,
    ReportRefused,
    StorageUnavailable,
    TaskNotYours,
    WorkerAuthError,
    WorkerGone,
)

__all__ = [
    "ControllerError",
    "InvalidRequest",
    "NotFound",
    "NotReady",
    "NotStored",
    "QueueFull",
    "ReportRefused",
    "StorageUnavailable",
    "TaskNotYours",
    "WorkerAuthError",
    "WorkerGone",
]
