"""Split mode in process: the `rest-api` app forwards every id as one path segment, and turns a
controller's wrong answer (a stray redirect, a body that is not JSON or not of the expected
shape) into a 502 saying so, never a 500."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.unit.api_stub import StubController, client, controller_app, split_app

ODD_IDS = ["?", "#", ".", "..", "%", "a b", "?x=1", "#frag", "..%2F", "é", ";", "&"]


@pytest.mark.parametrize("odd", ODD_IDS)
@pytest.mark.parametrize("route", ["/jobs/{}", "/jobs/{}/state", "/jobs/{}/output"])
async def test_odd_job_ids_get_the_same_404_as_in_process(odd, route):
    path = route.format(_quoted(odd))
    service = controller_app(StubController(jobs=2))
    async with client(service) as direct, client(split_app(service)) as split:
        expected = await direct.get(path)
        resp = await split.get(path)
    assert expected.status_code == 404, expected.text
    assert expected.json()["detail"] == f"job {odd!r} not found"
    assert (resp.status_code, resp.json()) == (404, expected.json())
    assert "location" not in resp.headers


@pytest.mark.parametrize("odd", ODD_IDS)
@pytest.mark.parametrize("route", ["/workers/{}", "/workers/{}/state"])
async def test_odd_worker_ids_get_the_same_404_as_in_process(odd, route):
    path = route.format(_quoted(odd))
    service = controller_app(StubController(workers=2))
    async with client(service) as direct, client(split_app(service)) as split:
        expected = await direct.get(path)
        resp = await split.get(path)
    assert expected.json()["detail"] == f"worker {odd!r} not found"
    assert (resp.status_code, resp.json()) == (404, expected.json())


def _quoted(value: str) -> str:
    return "%2E" * len(value) if value in (".", "..") else quote(value, safe="")


async def test_existing_ids_are_forwarded():
    stub = StubController(jobs=2, workers=1)
    async with client(split_app(controller_app(stub))) as split:
        assert (await split.get("/jobs/j00001")).json()["id"] == "j00001"
        assert (await split.get("/jobs/j00001/state")).json() == "Waiting"
        assert (await split.get("/workers/w00000")).json()["name"] == "worker-0"
        resp = await split.post(
            "/jobs", json={"id_video": "bbb_2.mp4", "bitrate": 2000, "speed": "fast"}
        )
    assert resp.status_code == 201 and resp.json() == "j00002"
    assert stub.jobs["j00002"].id_video == "bbb_2.mp4"


def _controller(handler) -> httpx.MockTransport:  # type: ignore[no-untyped-def]
    """A controller that answers every call with ``handler(request)``, and records the calls."""
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return handler(request)

    transport = httpx.MockTransport(record)
    transport.calls = calls  # type: ignore[attr-defined]
    return transport


@pytest.mark.parametrize(
    ("path", "answer", "words"),
    [
        ("/jobs/j1", httpx.Response(307, headers={"location": "/jobs"}), "answered 307 to /jobs"),
        ("/jobs/j1/state", httpx.Response(302, headers={"location": "/x"}), "answered 302"),
        ("/workers/w1", httpx.Response(304), "answered 304"),
        ("/jobs", httpx.Response(301, headers={"location": "/jobs/"}), "answered 301"),
        ("/jobs/j1", httpx.Response(200, text="<html>oops</html>"), "Invalid JSON"),
        ("/jobs/j1", httpx.Response(200, text=""), "Invalid JSON"),
        ("/jobs/j1", httpx.Response(200, json={"id": "j1"}), "/jobs/j1: id_video: Field required"),
        ("/jobs", httpx.Response(200, json=["j1"]), "GET /jobs: answer: Input should be an object"),
        ("/jobs", httpx.Response(200, json={"items": "j1", "has_more": 0}), "items"),
        ("/workers", httpx.Response(200, text="{"), "Invalid JSON"),
        ("/jobs/j1/output", httpx.Response(200, json="http://x"), "answered 200"),
        ("/jobs/j1/output", httpx.Response(307), "no output location"),
    ],
)
async def test_a_wrong_answer_from_the_controller_is_a_502(path, answer, words):
    transport = _controller(lambda _: answer)
    async with client(split_app(transport)) as split:
        resp = await split.get(path)
    assert resp.status_code == 502, resp.text
    message = resp.json()["message"]
    assert message.startswith("controller gave an invalid answer: ") and words in message
    assert resp.json()["detail"] == message and "\n" not in message


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(201, json=["j1"]), httpx.Response(201, text="nope"), httpx.Response(201)],
)
async def test_a_submission_answer_that_is_not_a_job_id_is_a_502(answer):
    async with client(split_app(_controller(lambda _: answer))) as split:
        resp = await split.post(
            "/jobs", json={"id_video": "bbb_2.mp4", "bitrate": 2000, "speed": "fast"}
        )
    assert resp.status_code == 502
    assert resp.json()["message"].startswith("controller gave an invalid answer: POST /jobs")


async def test_the_output_redirect_is_passed_on_and_ids_are_quoted():
    signed = "http://controller.test/files/output-videos/j%3F.mp4?expires=1&sig=ab"
    transport = _controller(lambda _: httpx.Response(307, headers={"location": signed}))
    async with client(split_app(transport)) as split:
        resp = await split.get("/jobs/j%3F%23/output")
    assert resp.status_code == 307 and resp.headers["location"] == signed
    assert transport.calls[0].url.raw_path == b"/jobs/j%3F%23/output"  # type: ignore[attr-defined]


async def test_controller_errors_keep_their_status_detail_and_message():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jobs/gone":
            return httpx.Response(404, json={"detail": "job 'gone' not found", "message": "m"})
        if request.url.path == "/jobs/list":
            return httpx.Response(500, json=["not", "a", "dict"])
        return httpx.Response(503, text="Service Unavailable")

    async with client(split_app(_controller(answer))) as split:
        gone = await split.get("/jobs/gone")
        odd = await split.get("/jobs/list")
        down = await split.get("/jobs/other")
    assert gone.status_code == 404
    assert gone.json() == {"detail": "job 'gone' not found", "message": "m"}
    assert odd.status_code == 500 and odd.json()["message"] == '["not","a","dict"]'
    assert down.status_code == 503 and down.json()["message"] == "Service Unavailable"


async def test_list_parameters_are_forwarded_only_when_given():
    transport = _controller(lambda _: httpx.Response(200, json={"items": [], "has_more": False}))
    async with client(split_app(transport)) as split:
        await split.get("/jobs")
        await split.get("/jobs?after=&limit=5")
        await split.get("/workers?after=w1")
    params = [dict(r.url.params) for r in transport.calls]  # type: ignore[attr-defined]
    assert params == [{}, {"limit": "5"}, {"after": "w1"}]
