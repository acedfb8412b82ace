"""The Python client against stubbed answers (httpx.MockTransport): how each error answer is
raised, what goes on the wire, and the event stream's parsing and resumption. The client
against a real service: tests/integration/test_client.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from dacirco.client import (
    ApiError,
    AsyncClient,
    Client,
    Conflict,
    Invalid,
    NotFound,
    QueueFull,
    Unauthorized,
    Unavailable,
    Unreachable,
    WaitTimeout,
)
from dacirco.client.errors import retry_after

URL = "http://api.test"
Handler = Callable[[httpx.Request], httpx.Response]


def job_body(job_id: str = "j1", state: str = "Waiting", **extra: object) -> dict:
    return {
        "id": job_id, "id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast",
        "codec": "h264", "state": state, "attempts": 0, **extra,
    }  # fmt: skip


def client(handler: Handler) -> Client:
    return Client(URL, token="tok", transport=httpx.MockTransport(handler))


def error(status: int, message: str, detail: object = None, **headers: str) -> Handler:
    body = {"detail": detail if detail is not None else message, "message": message}
    return lambda request: httpx.Response(status, json=body, headers=headers)


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, Unauthorized), (403, Unauthorized), (404, NotFound), (409, Conflict),
     (422, Invalid), (429, QueueFull), (503, Unavailable), (500, ApiError), (502, ApiError)],
)  # fmt: skip
def test_each_status_is_raised_as_its_kind(status: int, kind: type[ApiError]) -> None:
    with client(error(status, "what\n  went wrong", ["raw"])) as api, pytest.raises(kind) as info:
        api.job("j1")
    exc = info.value
    assert type(exc) is kind
    assert (exc.status, exc.message, exc.detail, exc.path) == (
        status, "what went wrong", ["raw"], "/jobs/j1",
    )  # fmt: skip
    assert str(exc) == "what went wrong"


def test_invalid_names_the_field_and_keeps_the_detail() -> None:
    detail = [{"loc": ["body", "bitrate"], "msg": "Input should be less than or equal to 8000"}]
    message = "bitrate: Input should be less than or equal to 8000"
    with client(error(422, message, detail)) as api, pytest.raises(Invalid) as info:
        api.submit("bbb_1.mp4", 9000, "fast")
    assert info.value.field == "bitrate" and info.value.detail == detail
    assert Invalid(422, "movie 'x.mp4' is not in the catalog").field is None
    assert Invalid(422, "body: must be a JSON object, not null").field == "body"


def test_queue_full_and_unavailable_carry_retry_after() -> None:
    full_queue = error(429, "the queue is full", **{"Retry-After": "7"})
    with client(full_queue) as api, pytest.raises(QueueFull) as full:
        api.submit("bbb_1.mp4", 1000, "fast")
    assert full.value.retry_after == 7.0
    with client(error(503, "storage is unavailable")) as api, pytest.raises(Unavailable) as down:
        api.job("j1")
    assert down.value.retry_after is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (retry_after(later) or 0) <= 120
    assert retry_after("soon") is None and retry_after("-3") == 0.0


def test_an_error_without_the_usual_body_still_says_something() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with client(handler) as api, pytest.raises(ApiError) as info:
        api.jobs()
    assert info.value.status == 502 and "Bad Gateway" in info.value.message


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (httpx.Response(200, text="not json"), lambda api: api.job("j1")),
        (httpx.Response(200, json={"id": "j1"}), lambda api: api.job("j1")),
        (httpx.Response(201, json=["j1"]), lambda api: api.submit("bbb_1.mp4", 1000, "fast")),
        (httpx.Response(200, json="x"), lambda api: api.output_url("j1")),
        (httpx.Response(307, headers={"Location": "/x"}), lambda api: api.job("j1")),
    ],
)
def test_answers_of_the_wrong_shape_are_502(answer: httpx.Response, call: Callable) -> None:
    with client(lambda request: answer) as api, pytest.raises(ApiError) as info:
        call(api)
    assert info.value.status == 502 and "invalid answer" in info.value.message


def test_a_refused_connection_is_unreachable_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}") as api, pytest.raises(Unreachable) as info:
        api.job("j1")
    assert info.value.status == 0
    assert info.value.message.startswith(f"cannot reach http://127.0.0.1:{port}/jobs/j1: ")


# ---- requests --------------------------------------------------------------------------------
def test_submit_sends_the_optional_fields_only_when_given() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json=f"j{len(bodies)}")

    with client(handler) as api:
        assert api.submit("bbb_1.mp4", 1000, "fast") == "j1"
        api.submit("bbb_1.mp4", 1000, "fast", "hevc", priority=0, callback_url="http://cb")
        api.submit("bbb_1.mp4", 1000, "fast", reuse=False)
        api.submit("bbb_1.mp4", None, None, preset="hls-ladder", quality=True, thumbnails_every=5)
    assert bodies == [
        {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast"},
        {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast", "codec": "hevc",
         "priority": 0, "callback_url": "http://cb"},
        {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast", "reuse": False},
        {"id_video": "bbb_1.mp4", "preset": "hls-ladder", "quality": True,
         "thumbnails": {"every": 5}},
    ]  # fmt: skip


def test_ids_are_one_path_segment_and_pages_are_followed() -> None:
    seen: list[str] = []
    ids = [f"j{i}" for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if request.url.path == "/jobs":
            after = request.url.params.get("after")
            start = ids.index(after) + 1 if after else 0
            page = {"items": ids[start : start + 2], "has_more": start + 2 < len(ids)}
            return httpx.Response(200, json=page)
        return httpx.Response(200, json="Waiting")

    with client(handler) as api:
        assert list(api.iter_jobs(page_size=2)) == ids
        api.state("a/b?c")
        api.worker_state("..")
    assert seen == [
        "/jobs?limit=2", "/jobs?limit=2&after=j1", "/jobs?limit=2&after=j3",
        "/jobs/a%2Fb%3Fc/state", "/workers/%2E%2E/state",
    ]  # fmt: skip


def test_wait_polls_until_a_final_state_or_times_out() -> None:
    states = iter(["Waiting", "Started", "Canceled"])
    with client(lambda r: httpx.Response(200, json=job_body(state=next(states)))) as api:
        assert api.wait("j1", poll=0.01).state == "Canceled"
    started = client(lambda r: httpx.Response(200, json=job_body(state="Started")))
    with started as api, pytest.raises(WaitTimeout, match=r"still Started after 0\.05 s") as info:
        api.wait("j1", timeout=0.05, poll=0.01)
    assert info.value.job.state == "Started"


def test_download_follows_the_signed_url_without_the_token(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.test":
            return httpx.Response(307, headers={"Location": "http://files.test/o/out%201.mp4?s=1"})
        assert "authorization" not in request.headers
        return httpx.Response(200, content=b"movie" * 1000)

    with client(handler) as api:
        assert api.output_url("j1") == "http://files.test/o/out%201.mp4?s=1"
        written = api.download("j1", tmp_path)
        assert written == tmp_path / "out 1.mp4" and written.read_bytes() == b"movie" * 1000
        assert api.download("j1", tmp_path / "x.mp4").stat().st_size == 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out 1.mp4", "x.mp4"]


# ---- the event stream ------------------------------------------------------------------------
def sse_event(seq: int, state: str, previous: str | None, job_id: str = "j1") -> str:
    data = {"seq": seq, "at": "2026-12-03T10:00:01.250Z", "kind": "job", "id": job_id,
            "state": state, "previous": previous, "detail": f"to {state}",
            "job": job_body(job_id, state)}  # fmt: skip
    return f"id: {seq}\nevent: job\ndata: {json.dumps(data)}\n\n"


def stream(*chunks: str) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(chunks).encode()
    )


class Streams:
    """Answers each connection to /events with the next of ``answers``; keeps the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/events"
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_events_are_parsed_and_a_job_stream_ends_with_its_final_state() -> None:
    streams = Streams(
        stream(
            "retry: 10\n: keepalive\n\n",
            sse_event(3, "Waiting", None),
            "event: job\ndata: not json\n\n",
            sse_event(4, "Started", "Waiting"),
            sse_event(5, "Completed", "Started"),
            sse_event(6, "never", "read"),
        )
    )
    with client(streams) as api:
        events = list(api.events(job="j1", after=2))
    assert [(e.seq, e.state, e.previous) for e in events] == [
        (3, "Waiting", None), (4, "Started", "Waiting"), (5, "Completed", "Started"),
    ]  # fmt: skip
    last = events[-1]
    assert last.final and last.kind == "job" and last.detail == "to Completed"
    assert last.job is not None and last.job.state == "Completed" and last.worker is None
    assert last.data["at"] == "2026-12-03T10:00:01.250Z"
    (request,) = streams.requests
    assert dict(request.url.params) == {"job": "j1", "after": "2"}
    assert "last-event-id" not in request.headers


def test_a_broken_stream_is_resumed_from_the_last_event() -> None:
    streams = Streams(
        stream("retry: 1\n\n", sse_event(1, "Waiting", None), sse_event(2, "Started", "Waiting")),
        httpx.ConnectError("refused"),
        stream(sse_event(3, "Canceled", "Started")),
    )
    with client(streams) as api:
        states = [e.state for e in api.events(job="j1", after=0)]
    assert states == ["Waiting", "Started", "Canceled"]
    first, retry, resumed = streams.requests
    assert first.url.params.get("after") == "0"
    for request in (retry, resumed):
        assert request.headers["last-event-id"] == "2" and "after" not in request.url.params


def test_a_first_connection_that_fails_raises_at_once() -> None:
    with client(Streams(httpx.ConnectError("refused"))) as api, pytest.raises(Unreachable):
        next(api.events())
    with client(Streams(error(404, "Not Found")(None))) as api, pytest.raises(NotFound):  # type: ignore[arg-type]
        next(api.events())
    with client(Streams(httpx.Response(200, json=[]))) as api, pytest.raises(ApiError) as info:
        next(api.events())
    assert info.value.status == 502 and "application/json" in info.value.message


def test_without_reconnect_the_stream_ends_when_the_server_closes_it() -> None:
    streams = Streams(stream(sse_event(1, "Waiting", None)))
    with client(streams) as api:
        assert [e.seq for e in api.events(reconnect=False)] == [1]


# ---- async -----------------------------------------------------------------------------------
async def test_the_async_client_raises_the_same_errors_and_resumes_the_same_way() -> None:
    streams = Streams(
        stream("retry: 1\n\n", sse_event(7, "Started", "Waiting")),
        stream(sse_event(8, "Error", "Started")),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/events":
            return streams(request)
        if request.method == "DELETE":
            return error(409, "job 'j1' is Completed: it cannot be canceled")(request)
        if request.url.path == "/jobs/nope":
            return error(404, "job 'nope' not found")(request)
        return httpx.Response(200, json=job_body(state="Completed"))

    async with AsyncClient(URL, transport=httpx.MockTransport(handler)) as api:
        assert (await api.wait("j1", poll=0.01)).state == "Completed"
        with pytest.raises(NotFound, match="'nope' not found"):
            await api.job("nope")
        with pytest.raises(Conflict, match="is Completed"):
            await api.cancel("j1")
        events = [e async for e in api.events(job="j1")]
    assert [e.state for e in events] == ["Started", "Error"]
    assert streams.requests[1].headers["last-event-id"] == "7"
