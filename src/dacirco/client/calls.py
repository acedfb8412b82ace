"""What the sync and the async client share: each route as a :class:`Call` (method, path,
parameters, body) and the reading of its answer. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from dacirco.api.remote import _segment
from dacirco.auth_options import bearer
from dacirco.client.errors import invalid_answer, raise_for

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATES = frozenset({"Completed", "Error", "Canceled"})
JOB_STATES = ("Waiting", "Started", "Completed", "Error", "Canceled")
DEFAULT_CODEC = "h264"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    """One request of the API; ``redirect``: a 3xx answer is the expected one."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    redirect: bool = False

    def send_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"params": self.params or None, "follow_redirects": False}
        if self.json is not None:
            args["json"] = self.json
        return args


def client_args(base_url: str, token: str | None, timeout: float) -> dict[str, Any]:
    """What both clients give their httpx client."""
    return {"base_url": base_url.rstrip("/"), "timeout": timeout, "headers": bearer(token)}


def job_path(job_id: str) -> str:
    return f"/jobs/{_segment(job_id)}"


def worker_path(worker_id: str) -> str:
    return f"/workers/{_segment(worker_id)}"


def preset_path(name: str) -> str:
    return f"/presets/{_segment(name)}"


def submit_call(
    id_video: str,
    bitrate: int | None,
    speed: str | None,
    codec: str = DEFAULT_CODEC,
    priority: int | None = None,
    callback_url: str | None = None,
    reuse: bool | None = None,
    *,
    preset: str | None = None,
    quality: bool | None = None,
    thumbnails_every: float | None = None,
) -> Call:
    """``POST /jobs``; the fields a classic server does not know go only when given. A
    streaming job (``preset``) has its bitrates in the preset: ``bitrate`` may be None."""
    body: dict[str, Any] = {"id_video": id_video}
    if bitrate is not None:
        body["bitrate"] = bitrate
    if speed is not None:
        body["speed"] = speed
    if codec != DEFAULT_CODEC:
        body["codec"] = codec
    if priority is not None:
        body["priority"] = priority
    if callback_url is not None:
        body["callback_url"] = callback_url
    if reuse is not None:
        body["reuse"] = reuse
    if preset is not None:
        body["preset"] = preset
    if quality is not None:
        body["quality"] = quality
    if thumbnails_every is not None:
        body["thumbnails"] = {"every": thumbnails_every}
    return Call("POST", "/jobs", json=body)


def outputs_call(job_id: str) -> Call:
    """``GET /jobs/{id}/outputs``: a streaming job's files, playlists and thumbnails."""
    return Call("GET", job_path(job_id) + "/outputs")


def page_call(kind: str, limit: int | None, after: str | None) -> Call:
    params: dict[str, Any] = {}
    if limit is not None:
        params["limit"] = limit
    if after:
        params["after"] = after
    return Call("GET", f"/{kind}", params=params)


def checked(resp: httpx.Response, call: Call) -> httpx.Response:
    """The answer, or its error raised typed; a redirect only where one is expected."""
    raise_for(resp)
    if resp.is_redirect != call.redirect:
        raise invalid_answer(resp, f"status {resp.status_code}")
    return resp


def model(resp: httpx.Response, kind: type[M]) -> M:
    try:
        return kind.model_validate_json(resp.content)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()
        )
        raise invalid_answer(resp, errors) from exc


def text(resp: httpx.Response, what: str) -> str:
    """A JSON string answer (a job id, a state)."""
    try:
        value = resp.json()
    except ValueError:
        value = None
    if not isinstance(value, str) or not value:
        raise invalid_answer(resp, f"{resp.text[:100]!r} is not {what}")
    return value


def healthy(resp: httpx.Response) -> bool:
    """Whether a ``/health`` answer says ok."""
    try:
        return resp.json() == {"status": "ok"}
    except ValueError:
        return False


def location(resp: httpx.Response) -> str:
    """Where a redirect points, made absolute against the request's URL."""
    where = resp.headers.get("location")
    if not where:
        raise invalid_answer(resp, "a redirect without Location")
    return str(resp.request.url.join(where))


def download_target(path: str | Path, url: str) -> Path:
    """The file to write: ``path``, or the output's own name inside ``path`` if it is a
    folder."""
    target = Path(path)
    if target.is_dir():
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "output.mp4"
        target = target / Path(name).name
    return target
