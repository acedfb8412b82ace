"""The worker protocol: the JSON bodies exchanged between a worker and the controller.

HTTP + JSON, every call carries ``Authorization: Bearer <worker token>``. Routes, all under
``/worker`` on the controller's URL:

- ``POST /worker/register`` (RegisterRequest -> RegisterReply): the worker is booted.
- ``GET /worker/task?wait=S``: long-poll; 200 with a TaskSpec, 204 when no task came within
  ``S`` seconds (poll again), 410 when the controller wants the worker to exit.
- ``POST /worker/tasks/{task_id}/report`` (TaskReport): a step of the task. 200 ``{"ok": true}``;
  409 when the task is no longer this worker's (drop it and poll again).
- ``POST /worker/tasks/{task_id}/upload-url`` -> UploadGrant: the signed PUT URL of the task's
  output, asked for just before the upload (it lives minutes, and only while the task is
  open); 409 when the task is no longer this worker's or no longer open.
- ``GET /worker/tasks/{task_id}/watch?wait=S``: long-poll while working; answers the task's
  state (a JSON string) at once when it is ``Canceled`` (its job was canceled: stop, drop
  it, poll for the next task), else after ``S`` seconds (watch again).
- ``POST /worker/samples`` (SamplesReport): resource samples (node, own process tree), sent
  every few seconds; 200 ``{"ok": true}``.

Any call is a heartbeat. 401 means the token is not (or no longer) valid: the worker exits.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TOKEN_ENV = "DACIRCO_WORKER_TOKEN"
# The node a runtime placed the worker on, when the host name does not say it (Ray nodes).
NODE_ENV = "DACIRCO_WORKER_NODE"

Step = Literal["started", "downloaded", "progress", "transcoded", "uploaded", "failed"]
ErrorKind = Literal["transcoding", "storage", "internal"]


MAX_CPUS = 4096
MAX_MEMORY_GB = 1e6
MAX_NAME_LENGTH = 255


class RegisterRequest(BaseModel):
    worker_id: str
    name: str = Field(max_length=MAX_NAME_LENGTH)
    node: str = Field(max_length=MAX_NAME_LENGTH)
    cpus: int = Field(ge=1, le=MAX_CPUS)
    memory_gb: float = Field(gt=0, le=MAX_MEMORY_GB)
    pid: int | None = None


class RegisterReply(BaseModel):
    worker_id: str
    poll_wait: float = Field(20.0, description="seconds to use as ?wait= on /worker/task")
    sample_interval: float = Field(
        0.0, description="seconds between resource samples (POST /worker/samples); 0: none"
    )


class TaskSpec(BaseModel):
    task_id: str
    job_id: str
    input_name: str
    output_name: str
    input_url: str = Field(description="signed GET URL of the input movie")
    bitrate_kbps: int
    speed: Literal["ultrafast", "fast"]
    codec: Literal["h264", "hevc"] = "h264"
    threads: int = Field(0, description="ffmpeg -threads; 0 lets ffmpeg choose")
    input_duration: float | None = None
    deadline_seconds: float | None = Field(
        None, description="ffmpeg is killed past this many seconds (None: no deadline)"
    )
    kind: Literal["whole", "chunk", "merge"] = Field(
        "whole", description="the whole movie, one chunk of it, or the merge of its chunks"
    )
    chunk_index: int = Field(0, ge=0, description="chunk: which one, 1..chunks")
    chunks: int = Field(0, ge=0, description="chunk, merge: how many chunks the job has")
    input_fps: float | None = Field(None, description="chunk: the input's frame rate")
    input_frames: int | None = Field(None, description="chunk: the input's frame count")
    chunk_urls: list[str] = Field(
        default_factory=list, description="merge: signed GET URLs of the chunks, in order"
    )


class UploadGrant(BaseModel):
    """``POST /worker/tasks/{task_id}/upload-url``: where to PUT the task's output."""

    url: str = Field(description="signed PUT URL for the output, for this task only")
    expires_in: float = Field(description="seconds the URL is valid from now")


class TaskReport(BaseModel):
    step: Step
    seconds: float | None = Field(None, description="the worker's own duration of this step")
    bytes: int | None = None
    progress: float | None = Field(None, ge=0.0, le=1.0)
    error_kind: ErrorKind | None = None
    message: str | None = None


MAX_SAMPLES = 1000


class WorkerSample(BaseModel):
    """One sample of the worker's node or process tree (format: dacirco.sampling)."""

    time: str = Field(max_length=64, description="ISO 8601 UTC")
    kind: Literal["node", "process"]
    host: str = Field(max_length=MAX_NAME_LENGTH)
    cpus: int | None = Field(None, ge=1, le=MAX_CPUS)
    cpu_percent: float | None = Field(None, ge=0.0, le=100.0)
    memory_used_gb: float | None = Field(None, ge=0.0, le=MAX_MEMORY_GB)
    memory_total_gb: float | None = Field(None, ge=0.0, le=MAX_MEMORY_GB)
    cpu_cores: float | None = Field(None, ge=0.0, le=MAX_CPUS)
    rss_gb: float | None = Field(None, ge=0.0, le=MAX_MEMORY_GB)


class SamplesReport(BaseModel):
    """``POST /worker/samples``: the samples taken since the last call (also a heartbeat)."""

    samples: list[WorkerSample] = Field(max_length=MAX_SAMPLES)
