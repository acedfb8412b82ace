"""Play a scenario against a DaCirco job API.

:func:`play` sends every request at its own time: request *i* is due at ``t0 + time_scale *
(delay_1 + ... + delay_i)`` on the event loop's clock. The player sleeps until each absolute
due time (never a chain of relative sleeps, so lateness does not add up) and sends each
``POST /jobs`` in its own task, without waiting for the previous answer. The one exception
is the first request: its answer is awaited before the schedule goes on, as the probe that
tells an unreachable server (:class:`ServerUnreachable`) from a late one; the following
requests keep their due times from ``t0``, so only an unusually slow first answer shows, as
their lag. For every request it records the due time, the actual send time (the difference
is the schedule lag), the HTTP status and the job id or the server's reason for refusing it.
A 4xx answer (unknown movie, bad bitrate) is counted as rejected and the play goes on; a
connection error after the first request is counted as a failed send.

With ``wait=True``, once everything is sent, every accepted job is polled (``GET /jobs/{id}``
every ``poll_interval`` s) until ``Completed``, ``Error`` or ``Canceled``, or until ``timeout``
s have passed; the report then holds the final states and the job delays (the job's ``delay``:
request to uploaded output).

:func:`play_one_by_one` sends one request, waits for its job to finish, then sends the next,
as the classic ``dacirco_wait_scenario`` did: the scenario's delays are **ignored**.

Every call goes through :class:`dacirco.client.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from dacirco.client import FINAL_STATES, ApiError, AsyncClient, Unreachable
from dacirco.scenario.model import Request

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phase is ``send``, ``wait`` or ``job``."""


class ServerUnreachable(ConnectionError):
    """The first request could not reach the server."""


@dataclass
class Sent:
    """What happened to one request of the scenario (``index`` counts from 1)."""

    index: int
    request: Request
    scheduled: float  # due time, seconds since the start of the play
    sent: float | None = None  # actual send time, same clock
    status: int | None = None
    job_id: str | None = None
    reason: str | None = None  # the server's reason for a rejection, or the send error
    state: str | None = None  # last state seen while waiting
    delay: float | None = None  # the job's delay (request to uploaded output), if known

    @property
    def lag(self) -> float | None:
        return None if self.sent is None else self.sent - self.scheduled


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class PlayReport:
    """The outcome of a play; times in seconds."""

    records: list[Sent]
    waited: bool = False
    duration: float = 0.0
    scheduled: bool = True  # False when requests were sent one by one (no schedule, no lag)
    accepted: int = field(init=False)
    rejected: list[tuple[int, str]] = field(init=False)
    failed: list[tuple[int, str]] = field(init=False)
    lag_max: float | None = field(init=False)
    lag_p95: float | None = field(init=False)
    final_states: dict[str, int] = field(init=False)
    unfinished: int = field(init=False)
    delay_avg: float | None = field(init=False)
    delay_p95: float | None = field(init=False)
    delay_max: float | None = field(init=False)

    def __post_init__(self) -> None:
        jobs = [r for r in self.records if r.job_id is not None]
        self.accepted = len(jobs)
        self.rejected = [
            (r.index, r.reason or "") for r in self.records if r.status and 400 <= r.status < 500
        ]
        rejected = {i for i, _ in self.rejected}
        self.failed = [
            (r.index, r.reason or "")
            for r in self.records
            if r.job_id is None and r.index not in rejected
        ]
        lags = [r.lag for r in self.records if r.lag is not None and self.scheduled]
        self.lag_max = max(lags) if lags else None
        self.lag_p95 = percentile(lags, 95)
        self.final_states = dict(Counter(r.state or "unknown" for r in jobs)) if self.waited else {}
        self.unfinished = sum(1 for r in jobs if r.state not in FINAL_STATES) if self.waited else 0
        delays = [r.delay for r in jobs if r.delay is not None]
        self.delay_avg = sum(delays) / len(delays) if delays else None
        self.delay_p95 = percentile(delays, 95)
        self.delay_max = max(delays) if delays else None

    def rejection_reasons(self) -> dict[str, int]:
        """Each distinct rejection reason and how many requests got it."""
        return dict(Counter(reason for _, reason in self.rejected))


async def _send(
    client: AsyncClient, record: Sent, *, first: bool, reuse: bool | None = None
) -> None:
    request = record.request
    try:
        record.job_id = await client.submit(
            request.movie, request.bitrate, request.speed, reuse=reuse
        )
    except Unreachable as exc:
        if first:
            raise ServerUnreachable(
                f"cannot reach the job API at {client.base_url}: {exc.reason}"
            ) from exc
        record.reason = f"send failed: {exc.reason}"
        return
    except ApiError as exc:
        record.status = exc.status
        record.reason = exc.message
        if record.status >= 500:
            record.reason = f"HTTP {record.status}: {record.reason}"
        return
    record.status = 201


async def _poll(client: AsyncClient, record: Sent) -> None:
    assert record.job_id is not None
    try:
        job = await client.job(record.job_id)
    except ApiError:
        return  # try again at the next poll
    record.state = job.state
    if job.delay is not None:
        record.delay = float(job.delay)


async def _wait_all(
    client: AsyncClient,
    records: list[Sent],
    timeout: float,
    poll_interval: float,
    progress: Progress | None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    jobs = [r for r in records if r.job_id is not None]
    limit = asyncio.Semaphore(32)

    async def poll(record: Sent) -> None:
        async with limit:
            await _poll(client, record)

    while True:
        pending = [r for r in jobs if r.state not in FINAL_STATES]
        await asyncio.gather(*(poll(r) for r in pending))
        done = sum(1 for r in jobs if r.state in FINAL_STATES)
        if progress:
            progress("wait", done, len(jobs))
        if done == len(jobs) or loop.time() >= deadline:
            return
        await asyncio.sleep(min(poll_interval, max(0.0, deadline - loop.time())))


def _client(base_url: str, client: AsyncClient | None, token: str | None = None) -> AsyncClient:
    if client is not None:
        return client
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
    return AsyncClient(base_url, token, timeout=30.0, limits=limits)


async def play(
    requests: Sequence[Request],
    base_url: str,
    *,
    wait: bool = False,
    progress: Progress | None = None,
    time_scale: float = 1.0,
    client: AsyncClient | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 0.5,
    token: str | None = None,
    reuse: bool | None = None,
) -> PlayReport:
    """Send ``requests`` on their schedule (delays multiplied by ``time_scale``); see the
    module docstring. Raises :class:`ServerUnreachable` if the first request cannot connect.
    ``token``: the API token sent with every call (when ``client`` is not given); ``reuse``
    False: every request is transcoded, even one identical to an earlier one (None: the
    service's default, the classic body)."""
    if time_scale < 0:
        raise ValueError("time_scale must be >= 0")
    http = _client(base_url, client, token)
    loop = asyncio.get_running_loop()
    records: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        t0 = loop.time()
        due = 0.0
        for i, request in enumerate(requests):
            due += request.delay * time_scale
            record = Sent(index=i + 1, request=request, scheduled=due)
            records.append(record)
            wait_for = t0 + due - loop.time()
            if wait_for > 0:
                await asyncio.sleep(wait_for)
            record.sent = loop.time() - t0
            if i == 0:
                await _send(http, record, first=True, reuse=reuse)
            else:
                tasks.append(asyncio.create_task(_send(http, record, first=False, reuse=reuse)))
            if progress:
                progress("send", i + 1, len(requests))
        await asyncio.gather(*tasks)
        if wait:
            await _wait_all(http, records, timeout, poll_interval, progress)
        return PlayReport(records, waited=wait, duration=loop.time() - t0)
    finally:
        for task in tasks:
            task.cancel()
        if client is None:
            await http.aclose()


async def play_one_by_one(
    requests: Sequence[Request],
    base_url: str,
    *,
    progress: Progress | None = None,
    client: AsyncClient | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 0.5,
    token: str | None = None,
) -> PlayReport:
    """Send each request once the previous job is in a final state (or has not
    finished within ``timeout`` s); the scenario's delays are ignored."""
    http = _client(base_url, client, token)
    loop = asyncio.get_running_loop()
    records: list[Sent] = []
    try:
        t0 = loop.time()
        for i, request in enumerate(requests):
            now = loop.time() - t0
            record = Sent(index=i + 1, request=request, scheduled=now, sent=now)
            records.append(record)
            await _send(http, record, first=i == 0)
            if record.job_id is not None:
                deadline = loop.time() + timeout
                while True:
                    await _poll(http, record)
                    if record.state in FINAL_STATES or loop.time() >= deadline:
                        break
                    await asyncio.sleep(poll_interval)
            if progress:
                progress("job", i + 1, len(requests))
        return PlayReport(records, waited=True, duration=loop.time() - t0, scheduled=False)
    finally:
        if client is None:
            await http.aclose()
