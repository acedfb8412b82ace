"""The scenario player: absolute schedule, rejections, failed sends, waiting for jobs; and its
schedule lag against a tiny in-test HTTP server answering 201 at once."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from dacirco.api.thread_server import serve_in_thread
from dacirco.client import AsyncClient
from dacirco.scenario.model import Request
from dacirco.scenario.player import (
    ServerUnreachable,
    percentile,
    play,
    play_one_by_one,
)

URL = "http://jobs.test"


def req(delay: float = 0.0, movie: str = "bbb_1.mp4") -> Request:
    return Request(delay, movie, 1000, "ultrafast")


class FakeApi:
    """An in-memory job API for httpx.MockTransport: unknown movies get 404, jobs finish
    after ``polls`` GETs."""

    def __init__(self, answer_delay: float = 0.0, polls: int = 2) -> None:
        self.answer_delay = answer_delay
        self.polls = polls
        self.jobs: dict[str, dict] = {}
        self.received: list[tuple[float, dict]] = []
        self.gets: dict[str, int] = {}
        self.refuse_after: int | None = None
        self.in_flight = self.most_in_flight = 0  # requests sent, not answered yet

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            import json

            body = json.loads(request.content)
            if self.refuse_after is not None and len(self.received) >= self.refuse_after:
                raise httpx.ConnectError("connection refused", request=request)
            self.received.append((time.monotonic(), body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.answer_delay)
            finally:
                self.in_flight -= 1
            if body["id_video"] == "bbb_99.mp4":
                message = "movie bbb_99.mp4 is not in the catalog"
                return httpx.Response(404, json={"detail": message, "message": message})
            job_id = f"job-{len(self.jobs)}"
            self.jobs[job_id] = body
            return httpx.Response(201, json=job_id)
        job_id = request.url.path.rsplit("/", 1)[-1]
        self.gets[job_id] = self.gets.get(job_id, 0) + 1
        done = self.gets[job_id] >= self.polls
        state = (
            ("Error" if self.jobs[job_id]["speed"] == "fast" else "Completed")
            if done
            else "Started"
        )
        delay = 2.0 + int(job_id.split("-")[1]) if state == "Completed" else None
        body = {**self.jobs[job_id], "id": job_id, "codec": "h264", "attempts": 1}
        return httpx.Response(200, json={**body, "state": state, "delay": delay})


def client(api: FakeApi) -> AsyncClient:
    return AsyncClient(URL, transport=httpx.MockTransport(api))


async def test_sends_without_waiting_for_answers_on_absolute_times():
    api = FakeApi(answer_delay=0.3)
    requests = [req(0.0)] + [req(0.05) for _ in range(5)]
    async with client(api) as http:
        report = await play(requests, URL, client=http)
    # The first answer (0.3 s) is awaited; the other five are all due by then and go at once,
    # each without waiting for an answer: all five are out together (however busy the machine).
    assert report.accepted == 6 and not report.rejected and not report.failed
    assert api.most_in_flight == 5
    assert [r.scheduled for r in report.records] == pytest.approx([0, 0.05, 0.1, 0.15, 0.2, 0.25])


class LateClock:
    """``asyncio`` as the player sees it, on a clock of its own where every sleep wakes
    ``late`` seconds after its time (as on a busy machine): the schedule is checked without
    depending on how busy this machine really is."""

    def __init__(self, late: float) -> None:
        self.now, self.late = 0.0, late

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(asyncio, name)

    def get_running_loop(self) -> LateClock:
        return self

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds) + self.late
        await asyncio.sleep(0)


async def test_schedule_lag_does_not_accumulate(monkeypatch):
    """Each send is due at its absolute time: 50 sleeps each 5 ms late make every send 5 ms
    late, not the last one 250 ms late."""
    import dacirco.scenario.player as player

    clock = LateClock(late=0.005)
    monkeypatch.setattr(player, "asyncio", clock)
    api = FakeApi()
    requests = [req(0.0)] + [req(0.01) for _ in range(50)]
    async with client(api) as http:
        report = await play(requests, URL, client=http)
    assert report.duration == pytest.approx(0.505, abs=1e-6)
    assert report.lag_max == pytest.approx(0.005, abs=1e-6)


async def test_time_scale_shrinks_delays():
    api = FakeApi()
    async with client(api) as http:
        report = await play([req(0.0), req(10.0), req(10.0)], URL, client=http, time_scale=0.01)
    assert report.records[-1].scheduled == pytest.approx(0.2)
    assert report.duration < 1.0


async def test_rejections_carry_the_server_reason_and_the_play_goes_on():
    api = FakeApi()
    requests = [req(), req(0.01, "bbb_99.mp4"), req(0.01), req(0.01, "bbb_99.mp4")]
    async with client(api) as http:
        report = await play(requests, URL, client=http)
    assert report.accepted == 2
    assert report.rejected == [(2, "movie bbb_99.mp4 is not in the catalog")] * 1 + [
        (4, "movie bbb_99.mp4 is not in the catalog")
    ]
    assert report.rejection_reasons() == {"movie bbb_99.mp4 is not in the catalog": 2}
    assert report.records[1].status == 404 and report.records[1].job_id is None


async def test_unreachable_first_request_raises():
    api = FakeApi()
    api.refuse_after = 0
    async with client(api) as http:
        with pytest.raises(ServerUnreachable, match="cannot reach"):
            await play([req(), req(0.01)], URL, client=http)


async def test_real_refused_connection_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}"):
        await play([req()], f"http://127.0.0.1:{port}")


async def test_later_connection_errors_are_failed_sends():
    api = FakeApi()
    api.refuse_after = 2
    async with client(api) as http:
        report = await play([req(), req(0.01), req(0.01), req(0.01)], URL, client=http)
    assert report.accepted == 2
    assert [i for i, _ in report.failed] == [3, 4]
    assert "connection refused" in report.failed[0][1]
    assert not report.rejected


async def test_wait_polls_until_final_states():
    api = FakeApi(polls=3)
    requests = [req(), Request(0.01, "bbb_2.mp4", 900, "fast"), req(0.01), req(0.01, "bbb_99.mp4")]
    seen = []
    async with client(api) as http:
        report = await play(
            requests,
            URL,
            client=http,
            wait=True,
            poll_interval=0.01,
            progress=lambda *a: seen.append(a),
        )
    assert report.final_states == {"Completed": 2, "Error": 1}
    assert report.unfinished == 0
    assert report.delay_avg == pytest.approx(3.0)  # jobs 0 and 2: delays 2 and 4
    assert report.delay_max == 4.0 and report.delay_p95 == 4.0
    assert ("send", 4, 4) in seen and seen[-1] == ("wait", 3, 3)


async def test_wait_is_bounded_by_the_timeout():
    api = FakeApi(polls=10**6)
    async with client(api) as http:
        start = time.monotonic()
        report = await play([req()], URL, client=http, wait=True, timeout=0.2, poll_interval=0.05)
    assert time.monotonic() - start < 1.0
    assert report.final_states == {"Started": 1} and report.unfinished == 1


async def test_one_by_one_waits_for_each_job_and_ignores_delays():
    api = FakeApi(polls=3)
    requests = [req(), req(100.0), req(100.0, "bbb_99.mp4"), req(100.0)]
    async with client(api) as http:
        report = await play_one_by_one(requests, URL, client=http, poll_interval=0.01)
    assert report.duration < 2.0
    assert report.accepted == 3 and len(report.rejected) == 1
    assert report.final_states == {"Completed": 3}
    # every job was polled to its end before the next request was sent
    assert api.gets == {"job-0": 3, "job-1": 3, "job-2": 3}


def test_percentile_nearest_rank():
    assert percentile([], 95) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile(list(range(1, 21)), 95) == 19


@pytest.fixture
def instant_server() -> Iterator[str]:
    """A FastAPI app answering ``POST /jobs`` with 201 at once, served by uvicorn in a thread."""
    from fastapi import FastAPI

    app = FastAPI()
    count = iter(range(10**9))

    @app.post("/jobs", status_code=201)
    async def submit(body: dict) -> str:
        return f"job-{next(count)}"

    with serve_in_thread(app) as url:
        yield url


@pytest.mark.slow
async def test_schedule_lag_at_100_requests_per_second(instant_server):
    requests = [req(0.0)] + [req(0.01) for _ in range(199)]
    report = await play(requests, instant_server)
    print(
        f"\nschedule lag over 200 requests at 100/s: max {report.lag_max * 1000:.2f} ms, "
        f"p95 {report.lag_p95 * 1000:.2f} ms, play {report.duration:.2f} s"
    )
    assert report.accepted == 200, report.failed[:3]
    # How late a send is depends on the machine (p95 10-47 ms on an idle 2-core VM, hundreds
    # of ms when it is busy): the figure is printed, not asserted. What does not depend on it:
    # no send is early, and the play ends no later than its worst single lag allows (a
    # scheduler that slept cumulatively would add every lag up, seconds here).
    assert report.duration >= 1.99 - 0.01
    assert report.duration <= 1.99 + report.lag_max + 0.2


async def test_the_classic_body_by_default_and_reuse_false_when_asked():
    api = FakeApi()
    async with client(api) as http:
        await play([req(), req()], URL, client=http)
        await play([req()], URL, client=http, reuse=False)
    bodies = [body for _, body in api.received]
    assert [set(b) for b in bodies[:2]] == [{"id_video", "bitrate", "speed"}] * 2
    assert bodies[2]["reuse"] is False
