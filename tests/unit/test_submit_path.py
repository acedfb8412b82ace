"""``POST /jobs`` answers the same on its short path (``api/submit_path.py``) as through the
route: the same status, body and headers, for good jobs and for every kind of bad body, on the
service's app and on the split one; the short path takes only the jobs the route would
accept, and hands the rest to the app with their body intact."""

from __future__ import annotations

import json

import pytest

from dacirco.api import submit_path
from tests.unit.api_stub import StubController, client, controller_app, split_app

GOOD = {"id_video": "bbb_0.mp4", "bitrate": 1000, "speed": "ultrafast"}
BODIES: list[tuple[str, bytes, bool]] = [  # (what, body, taken by the short path)
    ("a classic job", json.dumps(GOOD).encode(), True),
    ("every option", json.dumps(
        {**GOOD, "codec": "h264", "priority": 7, "reuse": False}).encode(), True),
    ("a whole float", json.dumps({**GOOD, "bitrate": 1210.0}).encode(), True),
    ("a movie not in the catalog", json.dumps({**GOOD, "id_video": "nope.mp4"}).encode(), True),
    ("a number as text", json.dumps({**GOOD, "bitrate": "1200"}).encode(), False),
    ("no speed", json.dumps({"id_video": "bbb_0.mp4", "bitrate": 1000}).encode(), False),
    ("a bitrate out of range", json.dumps({**GOOD, "bitrate": 10}).encode(), False),
    ("an unknown field", json.dumps({**GOOD, "colour": "red"}).encode(), False),
    ("an unknown speed", json.dumps({**GOOD, "speed": "slow"}).encode(), False),
    # The presets are the service's (operators add theirs): checked by the backend, as the
    # catalog is, on either path.
    ("an unknown preset", json.dumps({"id_video": "bbb_0.mp4", "preset": "x"}).encode(), True),
    ("not JSON", b"{", False),
    ("NaN", b"NaN", False),
    ("an array", b"[1]", False),
    ("nested too deeply", b"[" * 100_000, False),
    ("no body", b"", False),
    ("not UTF-8", b"\xff\xfe\x00", False),
]  # fmt: skip


def _without_short_path(app):
    app.short_path = False
    return app


def _apps(kind: str, short: bool):
    app = controller_app(StubController(jobs=3))
    if not short:
        _without_short_path(app)
    if kind == "split":
        app = split_app(app)
    return app if short else _without_short_path(app)


def _answer(resp) -> tuple[int, object, dict[str, str]]:
    headers = {k: v for k, v in resp.headers.items() if k in ("location", "content-type")}
    return resp.status_code, resp.json(), headers


@pytest.mark.parametrize("kind", ["service", "split"])
async def test_the_short_path_answers_as_the_route(kind, monkeypatch):
    taken: list[bytes] = []
    original = submit_path._job

    def spy(body: bytes):
        job = original(body)
        if job is not None:
            taken.append(body)
        return job

    monkeypatch.setattr(submit_path, "_job", spy)
    answers = {}
    for short in (True, False):
        async with client(_apps(kind, short)) as api:
            answers[short] = [
                _answer(
                    await api.post(
                        "/jobs", content=body, headers={"Content-Type": "application/json"}
                    )
                )
                for _, body, _ in BODIES
            ]
    for (what, _, _), fast, slow in zip(BODIES, answers[True], answers[False], strict=True):
        assert fast == slow, what
    expected = [body for _, body, short in BODIES if short]
    if kind == "service":
        assert taken == expected
    else:  # the controller's app takes each forwarded job on its short path too
        assert len(taken) == 2 * len(expected)
    statuses = [status for status, _, _ in answers[True]]
    assert statuses[:3] == [201] * 3 and statuses[3] == 422 and 201 not in statuses[4:]
    assert answers[True][0][2]["location"].endswith("/jobs/j00003")


async def test_other_requests_reach_the_app_with_their_body():
    async with client(controller_app(StubController(jobs=3))) as api:
        # Not declared JSON: the route answers, as it always did, how to send it.
        for headers in ({}, {"Content-Type": "text/plain"}):
            resp = await api.post("/jobs", content=json.dumps(GOOD).encode(), headers=headers)
            assert resp.status_code == 422, resp.text
            assert "send it with 'Content-Type: application/json'" in resp.json()["message"]
        # A query: the route's own check names the unknown parameter.
        query = await api.post("/jobs?x=1", json=GOOD)
        assert query.status_code == 422 and "x" in query.json()["message"], query.text
        # Another method or path.
        assert (await api.put("/jobs", json=GOOD)).status_code == 405
        assert (await api.get("/jobs")).json()["items"][:3] == ["j00000", "j00001", "j00002"]


async def test_with_fastapi_telemetry_on_every_submission_goes_the_whole_way(monkeypatch):
    """Traces and HTTP metrics of FastAPI's own telemetry must count the submissions too."""
    taken: list[bytes] = []
    original = submit_path._job
    monkeypatch.setattr(submit_path, "_job", lambda body: taken.append(body) or original(body))
    app = controller_app(StubController(jobs=3))
    app._traced = True  # what FastAPI's telemetry, on, makes of the first request
    async with client(app) as api:
        resp = await api.post("/jobs", json=GOOD)
    assert resp.status_code == 201 and resp.headers["location"].endswith("/jobs/j00003")
    assert taken == []
    fresh = controller_app(StubController(jobs=3))
    async with client(fresh) as api:
        assert (await api.post("/jobs", json=GOOD)).status_code == 201
    assert fresh._traced is False and len(taken) == 1  # telemetry off here: the short path
