"""The public API's contract on a real service: statuses, bodies, and a clear message for every
bad input (never a 500)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

GOOD = {"id_video": "bbb_0.mp4", "bitrate": 1000, "speed": "ultrafast"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def svc(catalog_dir, tmp_path_factory):
    from tests.conftest import start_service

    service = start_service(
        catalog_dir, tmp_path_factory.mktemp("api"), "--max-workers", "1", "--max-idle-time", "2"
    )
    yield service
    service.stop()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**GOOD, "bitrate": 9000}, "bitrate", "less than or equal to 8000"),
        ({**GOOD, "bitrate": 499}, "bitrate", "greater than or equal to 500"),
        ({**GOOD, "bitrate": 7000000}, "bitrate", "less than or equal to 8000"),
        ({**GOOD, "bitrate": "7000"}, "bitrate", "integer"),
        ({**GOOD, "bitrate": 1500.5}, "bitrate", "integer"),
        ({**GOOD, "speed": "slow"}, "speed", "'ultrafast' or 'fast'"),
        ({**GOOD, "speed": None}, "speed", "'ultrafast' or 'fast'"),
        ({"bitrate": 1000, "speed": "fast"}, "id_video", "Field required"),
        ({**GOOD, "id_video": "../../etc/passwd"}, "id_video", "no path"),
        ({**GOOD, "id_video": ""}, "id_video", "no path"),
        ({**GOOD, "codec": "vp9"}, "codec", "'h264' or 'hevc'"),
        ({**GOOD, "colour": "blue"}, "colour", "Extra inputs"),
        ([GOOD], "body", "must be a JSON object, not an array"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(svc, body, field, words):
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 422, resp.text
    message = resp.json()["message"]
    assert message.startswith(f"{field}:") and words in message, message


@pytest.mark.parametrize(
    ("content", "headers", "words"),
    [
        (b"", {"Content-Type": "application/json"}, "a JSON object with id_video"),
        (b"", {}, "a JSON object with id_video"),
        (b"{not json", {"Content-Type": "application/json"}, "JSON"),
        (b"{", JSON, "body: invalid JSON (Expecting property name enclosed in double quotes at "
         "character 1)"),
        (b"NaN", JSON, "body: not valid JSON (NaN, Infinity"),
        (b"1e999", JSON, "body: not valid JSON (NaN, Infinity"),
        (b"[" * 100_000, JSON, "body: cannot be read as JSON (nested too deeply)"),
        (b'{"id_video": "bbb_0.mp4"}', {}, "send it with 'Content-Type: application/json'"),
        (b'{"id_video": "bbb_0.mp4"}', {"Content-Type": "application/x-www-form-urlencoded"},
         "send it with 'Content-Type: application/json'"),
        (b"null", {"Content-Type": "application/json"}, "body: must be a JSON object, not null"),
        (b"\xff\xfe\x00", {"Content-Type": "application/json"}, "the bytes are not UTF-8"),
    ],
)  # fmt: skip
def test_empty_or_malformed_bodies_get_422(svc, content, headers, words):
    resp = svc.client.post("/jobs", content=content, headers=headers)
    assert resp.status_code == 422, resp.text
    assert words in resp.json()["message"]
    assert "\n" not in resp.json()["message"]


def test_unknown_movie_is_refused_at_submission_and_not_listed(svc):
    before = svc.client.get("/jobs").json()["items"]
    resp = svc.client.post("/jobs", json={**GOOD, "id_video": "bbb_99.mp4"})
    assert resp.status_code == 422
    assert "bbb_99.mp4" in resp.json()["detail"] and "catalog" in resp.json()["detail"]
    assert resp.json()["message"] == resp.json()["detail"]
    assert svc.client.get("/jobs").json()["items"] == before


@pytest.mark.parametrize("odd", ["nope", "%3F", "%23", "%2e", "%2E%2E", "a%20b"])
def test_unknown_ids_give_404_with_detail_and_message(svc, odd):
    name = {"%3F": "?", "%23": "#", "%2e": ".", "%2E%2E": "..", "a%20b": "a b"}.get(odd, odd)
    for kind in ("job", "worker"):
        for path in (f"/{kind}s/{odd}", f"/{kind}s/{odd}/state"):
            resp = svc.client.get(path)
            assert resp.status_code == 404, path
            body = resp.json()
            assert body == {"detail": f"{kind} {name!r} not found", "message": body["detail"]}


def test_state_routes_answer_json_strings_and_lists_paginate(svc):
    ids = [svc.submit(id_video="bbb_0.mp4") for _ in range(3)]
    assert svc.client.get(f"/jobs/{ids[0]}/state").json() in {"Waiting", "Started", "Completed"}
    page1 = svc.client.get("/jobs", params={"limit": 2}).json()
    assert page1["has_more"] is True and len(page1["items"]) == 2
    page2 = svc.client.get("/jobs", params={"limit": 2, "after": page1["items"][-1]}).json()
    assert page1["items"] + page2["items"] == svc.client.get("/jobs").json()["items"]
    assert set(ids) <= set(page1["items"] + page2["items"])
    assert svc.client.get("/jobs", params={"limit": 0}).status_code == 422
    everything = svc.client.get("/jobs").json()
    assert everything["has_more"] is False
    assert svc.client.get("/jobs?after=").json() == everything
    for job_id in ids:
        assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    workers = svc.client.get("/workers").json()
    assert workers["has_more"] is False and workers["items"]


def test_output_of_an_unfinished_or_unknown_job(svc):
    assert svc.client.get("/jobs/nope/output").status_code == 404
    odd = svc.client.get("/jobs/%3F/output")
    assert odd.status_code == 404 and odd.json()["message"] == "job '?' not found"


def test_worker_routes_need_a_worker_token(svc):
    assert svc.client.get("/worker/task").status_code == 401
    bad = {"Authorization": "Bearer forged"}
    resp = svc.client.post("/worker/register", headers=bad, json={})
    assert resp.status_code in (401, 422)
    assert svc.client.get("/worker/task", headers=bad).status_code == 401


def test_files_need_a_valid_signature(svc):
    job_id = svc.submit(id_video="bbb_0.mp4")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    url = svc.client.get(f"/jobs/{job_id}/output").headers["location"]
    got = svc.client.get(url)
    assert got.status_code == 200
    head = svc.client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    tampered = url.replace("sig=", "sig=0")
    assert svc.client.get(tampered).status_code == 403
    assert svc.client.head(tampered).status_code == 403
    other = url.replace("output-videos/", "input-videos/bbb_1.mp4?x=").split("?x=")[0]
    assert svc.client.get(other + "?" + url.split("?")[1]).status_code == 403
    assert svc.client.put(url, content=b"overwrite").status_code == 403
    escape = svc.client.get(
        "/files/input-videos/..%2F..%2Fdacirco.sqlite3?expires=9999999999&sig=x"
    )
    assert escape.status_code in (400, 403, 404)


def test_docs_are_served(svc):
    assert svc.client.get("/docs").status_code == 200
    assert "/jobs" in svc.client.get("/openapi.json").json()["paths"]
