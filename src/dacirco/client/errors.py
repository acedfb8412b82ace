"""The API's error answers as typed exceptions.

Every error answer of the service has ``detail`` and a one-line ``message``; 429 and 503
carry ``Retry-After``. :func:`raise_for` turns such an answer into the exception of its
status; a request that got no answer at all is :class:`Unreachable`.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

import httpx

from dacirco.api.responses import error_fields

# "bitrate: Input should be ..." -> "bitrate"; "body: ..." -> "body"
_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")


def _one_line(text: object, limit: int = 1000) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ApiError(Exception):
    """An error answer of the API: its ``status``, one-line ``message`` and raw ``detail``;
    ``path`` is the request's path (``/jobs/…``) when known."""

    def __init__(
        self, status: int, message: str, detail: object = None, *, path: str | None = None
    ) -> None:
        self.status = status
        self.message = _one_line(message)
        self.detail = detail if detail is not None else message
        self.path = path
        super().__init__(self.message)


class NotFound(ApiError):
    """404: no such job or worker (or ``after`` names none)."""


class Conflict(ApiError):
    """409: not possible in the job's state (no output yet, cancel a finished job)."""


class Invalid(ApiError):
    """422: an invalid field, body or parameter; ``field`` is the one the message names."""

    def __init__(
        self, status: int, message: str, detail: object = None, *, path: str | None = None
    ) -> None:
        super().__init__(status, message, detail, path=path)
        match = _FIELD.match(self.message)
        self.field: str | None = match.group(1) if match else None


class _RetryLater(ApiError):
    def __init__(
        self,
        status: int,
        message: str,
        detail: object = None,
        *,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, message, detail, path=path)
        self.retry_after = retry_after


class QueueFull(_RetryLater):
    """429: the queue is full, nothing was stored; ``retry_after`` seconds (if said)."""


class Unavailable(_RetryLater):
    """503: storage (or the split mode's controller) is unavailable; ``retry_after``."""


class Unauthorized(ApiError):
    """401 (no API token) or 403 (a wrong one)."""


class Unreachable(ApiError):
    """No answer at all (connection refused, timeout, broken stream). ``status`` is 0;
    ``url`` is where the client tried and ``reason`` why it failed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = _one_line(reason)
        super().__init__(0, f"cannot reach {url}: {self.reason}")


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: a number, or an HTTP date from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_for(resp: httpx.Response) -> ApiError:
    """The exception an error answer stands for."""
    status = resp.status_code
    path = resp.request.url.path
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail, message = error_fields(body, resp.text)
    if message is None:
        message = detail if isinstance(detail, str) and detail else f"HTTP {status}"
    if status in (429, 503):
        kind = QueueFull if status == 429 else Unavailable
        wait = retry_after(resp.headers.get("retry-after"))
        return kind(status, message, detail, path=path, retry_after=wait)
    return _BY_STATUS.get(status, ApiError)(status, message, detail, path=path)


def raise_for(resp: httpx.Response) -> httpx.Response:
    """``resp`` itself unless it is an error answer (4xx or 5xx), raised typed."""
    if resp.status_code >= 400:
        raise error_for(resp)
    return resp


def invalid_answer(resp: httpx.Response, what: str) -> ApiError:
    """An answer the API should not give (not JSON, not of the expected shape): a 502."""
    request = resp.request
    where = f"{request.method} {request.url.path}"
    return ApiError(502, f"{where} gave an invalid answer: {what}", path=request.url.path)


def unreachable(exc: httpx.HTTPError, base_url: object) -> Unreachable:
    """A transport error as :class:`Unreachable`, naming the URL tried."""
    try:
        url = str(exc.request.url)
    except RuntimeError:  # an error raised before any request was built
        url = str(base_url)
    return Unreachable(url, str(exc).strip() or type(exc).__name__)


class WaitTimeout(TimeoutError):
    """A job not in a final state within the time given; ``job`` is its last body seen."""

    def __init__(self, job: object, timeout: float) -> None:
        self.job = job
        self.timeout = timeout
        job_id = getattr(job, "id", "?")
        state = getattr(job, "state", "?")
        super().__init__(f"job {job_id} is still {state} after {timeout:g} s")
