"""The public API's answers, in process: one-line messages on every error, and lists that are
complete unless a page is asked for. Each test runs on the service's app and on the split one."""

from __future__ import annotations

import pytest

from dacirco.domain import MAX_MOVIE_NAME
from tests.unit.api_stub import StubController, client, controller_app, split_app

GOOD = {"id_video": "bbb_0.mp4", "bitrate": 1000, "speed": "ultrafast"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["service", "split"])
def make_api(request):
    """``make_api(stub)``: an HTTP client on the service's app, or on the split one."""

    def make(stub: StubController | None = None):
        app = controller_app(stub or StubController(jobs=3, workers=2))
        return client(app if request.param == "service" else split_app(app))

    return make


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "body: invalid JSON (Expecting property name enclosed in double quotes at "
         "character 1)"),
        (b'{"id_video": "bbb_0.mp4",', "body: invalid JSON (Expecting property name enclosed "
         "in double quotes at character 25)"),
        (b'{"bitrate": }', "body: invalid JSON (Expecting value at character 12)"),
        (b"NaN", "body: not valid JSON (NaN, Infinity and numbers out of range like 1e999)"),
        (b"1e999", "body: not valid JSON (NaN, Infinity and numbers out of range like 1e999)"),
        (b"-Infinity", "body: not valid JSON (NaN, Infinity and numbers out of range like 1e999)"),
        (b"[" * 100_000, "body: cannot be read as JSON (nested too deeply)"),
        (b"\xff\xfe\x00", "body: not valid JSON (the bytes are not UTF-8, UTF-16 or UTF-32 text)"),
        (b"null", "body: must be a JSON object, not null"),
        (b"[1]", "body: must be a JSON object, not an array"),
        (b'"bbb_0.mp4"', "body: must be a JSON object, not a string"),
        (b"7000", "body: must be a JSON object, not a number"),
        (b"true", "body: must be a JSON object, not a boolean"),
        (b"", "body: a JSON object with id_video, bitrate and speed is required"),
    ],
)  # fmt: skip
async def test_malformed_bodies_get_a_422_saying_what_is_wrong(make_api, content, message):
    async with make_api() as api:
        resp = await api.post("/jobs", content=content, headers=JSON)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == message
    assert isinstance(resp.json()["detail"], list)  # as it always was


async def test_a_body_sent_without_a_json_content_type_says_so(make_api):
    async with make_api() as api:
        resp = await api.post("/jobs", content=b'{"id_video": "bbb_0.mp4"}')
    assert resp.status_code == 422
    assert resp.json()["message"] == (
        "body: not read as JSON: send it with 'Content-Type: application/json'"
    )


async def test_field_errors_keep_their_detail_list_and_name_the_field(make_api):
    async with make_api() as api:
        resp = await api.post("/jobs", json={**GOOD, "bitrate": 9000, "speed": "slow"})
    assert resp.status_code == 422
    body = resp.json()
    assert [e["loc"] for e in body["detail"]] == [["body", "bitrate"], ["body", "speed"]]
    assert body["message"].startswith("bitrate: Input should be less than or equal to 8000; ")
    assert "speed: Input should be 'ultrafast' or 'fast'" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/jobs", {**GOOD, "id_video": "nope.mp4"}, 422,
         "movie 'nope.mp4' is not in the catalog"),
        ("GET", "/jobs/nope", None, 404, "job 'nope' not found"),
        ("GET", "/jobs/nope/state", None, 404, "job 'nope' not found"),
        ("GET", "/jobs/j00000/output", None, 409, "job 'j00000' is Waiting: no output yet"),
        ("GET", "/workers/nope", None, 404, "worker 'nope' not found"),
        ("GET", "/workers/nope/state", None, 404, "worker 'nope' not found"),
        ("GET", "/jobs?after=nope", None, 404, "after: job 'nope' not found"),
        ("GET", "/jobs?limit=0", None, 422, "limit: Input should be greater than or equal to 1"),
        ("GET", "/no/such/route", None, 404, "Not Found"),
        ("DELETE", "/jobs", None, 405, "method DELETE is not allowed here: GET, POST"),
    ],
)  # fmt: skip
async def test_every_error_has_detail_and_a_one_line_message(
    make_api, method, path, body, status, message
):
    async with make_api() as api:
        resp = await api.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["message"] == message
    assert "\n" not in resp.json()["message"]
    if status != 422 or method == "POST":
        assert resp.json()["detail"] == message  # strings stay strings, as before


@pytest.mark.parametrize("length", [MAX_MOVIE_NAME + 1, 5000])
async def test_a_movie_name_too_long_gets_a_422_naming_the_limit(make_api, length):
    async with make_api() as api:
        resp = await api.post("/jobs", json={**GOOD, "id_video": "m" * (length - 4) + ".mp4"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        f"id_video: too long: {length} characters, at most {MAX_MOVIE_NAME} (the names of its "
        "outputs must fit in a 255-byte file name)"
    )


async def test_output_of_an_unfinished_job_is_a_409_in_split_mode_too(make_api):
    async with make_api(StubController(jobs=1)) as api:
        resp = await api.get("/jobs/j00000/output")
    assert resp.status_code == 409 and "location" not in resp.headers


async def test_lists_without_limit_come_in_pages_of_a_thousand(make_api):
    stub = StubController(jobs=2_345, workers=1_000)
    async with make_api(stub) as api:
        jobs = (await api.get("/jobs")).json()
        rest = (await api.get("/jobs", params={"after": jobs["items"][-1]})).json()
        last = (await api.get("/jobs", params={"after": rest["items"][-1]})).json()
        workers = (await api.get("/workers")).json()
    ids = list(stub.jobs)
    assert jobs == {"items": ids[:1000], "has_more": True}
    assert rest == {"items": ids[1000:2000], "has_more": True}
    assert last == {"items": ids[2000:], "has_more": False}
    assert workers == {"items": list(stub.workers), "has_more": False}


async def test_lists_page_when_a_limit_is_given(make_api):
    stub = StubController(jobs=2_345)
    ids = list(stub.jobs)
    async with make_api(stub) as api:
        first = (await api.get("/jobs", params={"limit": 1000})).json()
        last = (await api.get("/jobs", params={"limit": 1000, "after": ids[1999]})).json()
        too_big = await api.get("/jobs", params={"limit": 10_001})
        rest = (await api.get("/jobs", params={"after": ids[9]})).json()
    assert first == {"items": ids[:1000], "has_more": True}
    assert last == {"items": ids[2000:], "has_more": False}
    assert too_big.status_code == 422
    assert rest == {"items": ids[10:1010], "has_more": True}  # a default page after it


async def test_an_empty_after_is_the_same_as_none(make_api):
    stub = StubController(jobs=5, workers=3)
    async with make_api(stub) as api:
        jobs = await api.get("/jobs?after=")
        paged = await api.get("/jobs?after=&limit=2")
        workers = await api.get("/workers?after=")
    assert jobs.status_code == 200 and jobs.json()["items"] == list(stub.jobs)
    assert paged.json() == {"items": list(stub.jobs)[:2], "has_more": True}
    assert workers.status_code == 200 and workers.json()["items"] == list(stub.workers)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("OPTIONS", "/jobs", "GET, POST"), ("PUT", "/jobs/j1", "DELETE, GET"),
     ("POST", "/workers", "GET")],
)  # fmt: skip
async def test_a_405_lists_every_method_of_the_path(make_api, method, path, allow):
    async with make_api() as api:
        resp = await api.request(method, path)
    assert (resp.status_code, resp.headers["allow"]) == (405, allow)
    assert resp.json()["message"] == f"method {method} is not allowed here: {allow}"


async def test_a_whole_number_written_with_a_fraction_is_an_integer(make_api):
    """JSON Schema's integer: 1210.0 is one; 1210.5 and "1210" are not."""
    async with make_api() as api:
        ok = await api.post("/jobs", json={**GOOD, "bitrate": 1210.0, "priority": 5.0})
        assert ok.status_code == 201, ok.text
        for bad in ({"bitrate": 1210.5}, {"bitrate": "1210"}, {"priority": True}):
            resp = await api.post("/jobs", json={**GOOD, **bad})
            (field,) = bad
            assert resp.status_code == 422 and resp.json()["message"].startswith(field), bad


async def test_an_unknown_query_parameter_is_named_not_ignored(make_api):
    async with make_api() as api:
        resp = await api.get("/jobs", params={"limt": 5})
        assert resp.status_code == 422
        assert resp.json()["message"] == (
            "limt: unknown parameter (this route takes: after, limit)"
        )
        assert (await api.get("/jobs", params={"limit": 5})).status_code == 200


async def test_the_split_api_says_where_the_dashboard_is():
    from tests.unit.api_stub import CONTROLLER_URL, controller_app, split_app

    async with client(split_app(controller_app(StubController()))) as api:
        for path in ("/", "/ui", "/ui/jobs/j00000"):
            resp = await api.get(path)
            assert resp.status_code == 404, (path, resp.text)
            assert resp.json()["message"] == (
                f"the dashboard is served by the controller: {CONTROLLER_URL}/ui"
            )
