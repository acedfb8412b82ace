"""A client's request made a job: what is checked before the storage is asked anything, and
the job built from the request and what the catalog says of its movie. Pure: the controller
(``core.py``) asks the storage, checks the queue and stores the job."""

from __future__ import annotations

from dataclasses import dataclass

from dacirco.core.errors import InvalidRequest
from dacirco.domain import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    Codec,
    Job,
    Speed,
    movie_name_problem,
    shown,
)
from dacirco.outputs.names import encode_share
from dacirco.outputs.spec import OutputsError, OutputSpec, ThumbnailSpec, fitted
from dacirco.policies.work import QUALITY_COST
from dacirco.storage.base import ObjectInfo
from dacirco.webhooks import RefusedTarget, check_url


@dataclass(frozen=True)
class Request:
    """A submission as the API passes it on (``Controller.submit``)."""

    id_video: str
    bitrate: int
    speed: Speed
    codec: Codec
    priority: int = 0
    callback_url: str | None = None
    reuse: bool = True
    outputs: list[OutputSpec] | None = None
    preset: str | None = None
    quality: bool = False
    thumbnails: ThumbnailSpec | None = None


def checked(request: Request, allow_private: bool) -> str | None:
    """The request's callback URL, normalised, or ``InvalidRequest`` naming the field that is
    wrong: what can be told without asking the storage (a refused job costs nothing)."""
    if problem := movie_name_problem(request.id_video):
        raise InvalidRequest(f"id_video: {shown(request.id_video)}: {problem}")
    if not MIN_PRIORITY <= request.priority <= MAX_PRIORITY:
        raise InvalidRequest(
            f"priority: {request.priority} is not in {MIN_PRIORITY}..{MAX_PRIORITY}"
        )
    if request.thumbnails is not None and not request.outputs:
        raise InvalidRequest("thumbnails: only with a preset or outputs (a folder of files)")
    if request.callback_url is None:
        return None
    try:
        return check_url(request.callback_url, allow_private)
    except RefusedTarget as exc:
        raise InvalidRequest(f"callback_url: {exc}") from None


def new_job(
    request: Request,
    info: ObjectInfo | None,
    job_id: str,
    callback_url: str | None,
    received_at: float,
    max_attempts: int,
) -> Job:
    """The job of ``request``, its movie as the catalog describes it (``info``: None when the
    movie is not there, refused); streaming outputs fitted to the movie's height."""
    if info is None:
        raise InvalidRequest(f"id_video: movie {request.id_video!r} is not in the catalog")
    meta = {k.lower(): v for k, v in info.metadata.items()}
    width, height, fps = (_positive(meta.get(k)) for k in ("width", "height", "fps"))
    frames = _positive(meta.get("frames"))
    outputs, bitrate = request.outputs, request.bitrate
    try:  # streaming outputs, fitted to the input's height: refused, or a ladder cut
        streams, bitrate = fitted(outputs, height, request.preset) if outputs else (None, bitrate)
    except OutputsError as exc:
        raise InvalidRequest(str(exc)) from None
    thumbnails = request.thumbnails
    share = encode_share(streams, height) if streams else 1.0
    return Job(
        id=job_id,
        id_video=request.id_video,
        bitrate=bitrate,
        speed=request.speed,
        codec=request.codec,
        priority=request.priority,
        callback_url=callback_url,
        reuse=request.reuse,
        preset=request.preset,
        outputs=streams,
        quality=request.quality,
        thumbnails=thumbnails.model_dump() if thumbnails is not None else None,
        received_at=received_at,
        max_attempts=max_attempts,
        input_size=info.size,
        input_duration=_positive(meta.get("duration")),
        input_pixel_rate=width * height * fps if width and height and fps else None,
        input_fps=fps,
        input_frames=int(frames) if frames else None,
        input_height=height,
        work_share=share * (1 + QUALITY_COST if request.quality else 1.0),
    )


def _positive(value: str | None) -> float | None:
    """A catalog metadata number, or None if missing, malformed or not positive."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 and number != float("inf") else None
