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
  open); 409 when the task is no longer this worker's or no longer open. A streaming task
  names its files (UploadRequest) and gets one URL each, in its output's folder.
- ``GET /worker/tasks/{task_id}/watch?wait=S``: long-poll while working; answers the task's
  state (a JSON string) at once when it is ``Canceled`` (its job was canceled: stop, drop
  it, poll for the next task), else after ``S`` seconds (watch again).
- ``POST /worker/samples`` (SamplesReport): resource samples (node, own process tree), sent
  every few seconds; 200 ``{"ok": true}``.

Any call is a heartbeat. 401 means the token is not (or no longer) valid: the worker exits.

Every field a worker sends is bounded (lengths, numbers): a longer or out-of-range value is
refused (422), except a ``failed`` report's message, which is cut to ``MAX_MESSAGE_LENGTH``
around a marker (``clip``): refusing it would lose the job's real error. A report that
contradicts what the controller knows (``uploaded`` with no such object in the storage, ...)
is refused with 422 too, and the worker fails its task.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from dacirco.outputs.spans import Span
from dacirco.outputs.spec import MAX_RENDITIONS, OutputSpec

TOKEN_ENV = "DACIRCO_WORKER_TOKEN"
# The node a runtime placed the worker on, when the host name does not say it (Ray nodes).
NODE_ENV = "DACIRCO_WORKER_NODE"

Step = Literal["started", "downloaded", "progress", "transcoded", "uploaded", "failed"]
ErrorKind = Literal["transcoding", "storage", "internal"]


MAX_CPUS = 4096
MAX_MEMORY_GB = 1e6
MAX_NAME_LENGTH = 255  # ids and names; a file name's limit (object names are shorter)
MAX_URL_LENGTH = 8192  # a signed URL: an S3 one with a session token is about 2 KB
MAX_CHUNK_URLS = 64  # a merge's chunks (the core splits in at most 16)
# A packaging's playlists: per part (at most 16), its master, its MPD, its HLS media playlists.
MAX_PLAYLIST_URLS = 16 * (MAX_RENDITIONS + 2)
MAX_SECONDS = 1e7  # a step's duration (deadlines are 120 s + 30 x the movie's duration)
MAX_BYTES = 1 << 50  # a transfer's size
# A failed report's message: ffmpeg's own error is at most 1000 characters.
MAX_MESSAGE_LENGTH = 4000


def clip(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and its tail around a marker
    saying how much was cut: an error's cause tends to come first and its outcome last."""
    if len(text) <= limit:
        return text
    marker = f" [… cut: {len(text)} characters in all …] "
    if len(marker) >= limit:
        return text[:limit]
    room = limit - len(marker)
    head = room * 3 // 4
    return text[:head] + marker + text[len(text) - (room - head) :]


class RegisterRequest(BaseModel):
    worker_id: str = Field(max_length=MAX_NAME_LENGTH)
    name: str = Field(max_length=MAX_NAME_LENGTH)
    node: str = Field(max_length=MAX_NAME_LENGTH)
    cpus: int = Field(ge=1, le=MAX_CPUS)
    memory_gb: float = Field(gt=0, le=MAX_MEMORY_GB)
    pid: int | None = Field(None, ge=0, le=2**32)


class RegisterReply(BaseModel):
    worker_id: str
    poll_wait: float = Field(20.0, description="seconds to use as ?wait= on /worker/task")
    sample_interval: float = Field(
        0.0, description="seconds between resource samples (POST /worker/samples); 0: none"
    )


class UnitSpec(BaseModel):
    """What a part of a split streaming job makes (``outputs.parts.Unit``): rendition
    ``rendition`` of output ``output`` (indexes from 0), with its sound or not; -1 and -1:
    the thumbnails."""

    output: int = Field(ge=-1, le=MAX_RENDITIONS)
    rendition: int = Field(ge=-1, le=MAX_RENDITIONS)
    audio: bool = True


class SpanSpec(BaseModel):
    """What a part of a streaming job split in time encodes (``outputs.spans.Span``):
    segments [first, last) of every rendition, ``seconds`` each; ``final``: to the end."""

    first: int = Field(ge=0)
    last: int = Field(ge=1)
    seconds: float = Field(gt=0, le=20)
    final: bool = False

    def cut(self) -> Span:
        return Span(self.first, self.last, self.seconds, self.final)


class TaskSpec(BaseModel):
    task_id: str = Field(max_length=MAX_NAME_LENGTH)
    job_id: str = Field(max_length=MAX_NAME_LENGTH)
    input_name: str = Field(max_length=MAX_NAME_LENGTH)
    output_name: str = Field(max_length=MAX_NAME_LENGTH)
    input_url: str = Field(
        max_length=MAX_URL_LENGTH, description="signed GET URL of the input movie"
    )
    bitrate_kbps: int
    speed: Literal["ultrafast", "fast"]
    codec: Literal["h264", "hevc"] = "h264"
    threads: int = Field(0, description="ffmpeg -threads; 0 lets ffmpeg choose")
    input_duration: float | None = None
    deadline_seconds: float | None = Field(
        None, description="ffmpeg is killed past this many seconds (None: no deadline)"
    )
    kind: Literal["whole", "chunk", "merge"] = Field(
        "whole",
        description="the whole movie, one chunk of it, or the merge of its chunks; for a "
        "streaming job, one part of its renditions (``units``) or their packaging",
    )
    chunk_index: int = Field(0, ge=0, description="chunk: which one, 1..chunks")
    chunks: int = Field(0, ge=0, description="chunk, merge: how many chunks the job has")
    input_fps: float | None = Field(None, description="chunk: the input's frame rate")
    input_frames: int | None = Field(None, description="chunk: the input's frame count")
    outputs: list[OutputSpec] | None = Field(
        None,
        description="streaming outputs: every file goes into output_name's folder, "
        "output_name (its main file) last",
    )
    chunk_urls: list[Annotated[str, Field(max_length=MAX_URL_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_CHUNK_URLS,
        description="merge: signed GET URLs of the chunks, in order",
    )
    units: list[UnitSpec] = Field(
        default_factory=list,
        max_length=MAX_RENDITIONS + 1,
        description="streaming chunk: the renditions (and thumbnails) this part makes",
    )
    span: SpanSpec | None = Field(
        None, description="streaming chunk of a job split in time: the span it encodes"
    )
    playlist_urls: dict[str, Annotated[str, Field(max_length=MAX_URL_LENGTH)]] = Field(
        default_factory=dict,
        max_length=MAX_PLAYLIST_URLS,
        description="streaming merge: signed GET URLs of the parts' playlists, by file name",
    )
    spans: int = Field(
        0, ge=0, description="streaming merge: the parts are this many spans in time (0: not)"
    )
    thumbnails_every: float | None = Field(
        None, description="streaming: a poster and sprite sheets of a frame every N seconds"
    )
    quality: bool = Field(
        False,
        description="measure VMAF, PSNR and SSIM of the output's video renditions (not for "
        "a chunk): sent with the transcoded report",
    )


MAX_UPLOAD_NAMES = 500  # files named in one upload-url call (a ladder asks in batches)


class UploadRequest(BaseModel):
    """The files of a streaming task's folder to upload (none: the task's one output)."""

    names: list[Annotated[str, Field(max_length=MAX_NAME_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_UPLOAD_NAMES
    )


class UploadGrant(BaseModel):
    """``POST /worker/tasks/{task_id}/upload-url``: where to PUT the task's output, or each
    file named in its ``UploadRequest``."""

    url: str = Field("", description="signed PUT URL for the output, for this task only")
    urls: dict[str, str] = Field(
        default_factory=dict, description="a streaming task: file name -> signed PUT URL"
    )
    expires_in: float = Field(description="seconds the URL is valid from now")


class RenditionQuality(BaseModel):
    """The measured quality of one video rendition against its input at the same size."""

    output: Literal["mp4", "hls", "dash"] = Field(description="the container it belongs to")
    rendition: int = Field(ge=1, le=64, description="its place in its output, from 1")
    height: int | None = Field(None, ge=1, le=100_000, description="None: the input's")
    video_bitrate: int | None = Field(None, ge=0, le=1_000_000, description="kbit/s asked")
    vmaf: float = Field(ge=0.0, le=100.0, description="VMAF (model vmaf_v0.6.1), mean")
    psnr: float = Field(ge=0.0, le=100.0, description="luma PSNR in dB, mean")
    ssim: float = Field(ge=0.0, le=1.0, description="luma SSIM, mean")
    frames: int = Field(ge=0, le=1 << 40, description="frames scored")
    every: int = Field(1, ge=1, le=1 << 20, description="one frame scored in this many")


class QualityReport(BaseModel):
    """What a task measured of its outputs (``TaskSpec.quality``)."""

    renditions: list[RenditionQuality] = Field(max_length=64)
    seconds: float = Field(0.0, ge=0.0, le=MAX_SECONDS, description="what measuring took")


class TaskReport(BaseModel):
    step: Step
    seconds: float | None = Field(
        None, ge=0.0, le=MAX_SECONDS, description="the worker's own duration of this step"
    )
    bytes: int | None = Field(None, ge=0, le=MAX_BYTES, description="bytes transferred")
    progress: float | None = Field(None, ge=0.0, le=1.0)
    error_kind: ErrorKind | None = None
    message: str | None = Field(
        None,
        description=f"failed: why; cut to {MAX_MESSAGE_LENGTH} characters around a marker",
    )
    quality: QualityReport | None = Field(
        None, description="transcoded: the outputs' measured quality, when the task asked"
    )

    @field_validator("message", mode="before")
    @classmethod
    def _clip(cls, value: object) -> object:
        return clip(value) if isinstance(value, str) else value


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
