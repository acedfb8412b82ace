"""The monitor's data gathering against a stubbed REST API (httpx.MockTransport under the
client)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from dacirco.client import ApiError, AsyncClient
from dacirco.monitor import describe_error
from dacirco.monitor.snapshot import SnapshotFetcher


class FakeApi:
    """Answers /jobs, /workers and their items; counts requests and concurrency."""

    def __init__(self, n_jobs: int) -> None:
        self.jobs = {
            f"job-{i:04d}": {
                "id": f"job-{i:04d}", "id_video": "bbb_0.mp4", "bitrate": 1000,
                "speed": "fast", "codec": "h264", "attempts": 1,
                "state": "Completed" if i % 2 else "Waiting", "worker_id": "w-1",
                "timings": {"received": "2024-05-01T11:00:00+00:00",
                            "uploaded": f"2024-05-01T11:{i % 60:02d}:00+00:00"},
            }
            for i in range(n_jobs)
        }  # fmt: skip
        self.workers = {
            "w-1": {"id": "w-1", "name": "dacirco-worker-001", "state": "Idle",
                    "registered_at": "2024-05-01T10:00:00+00:00", "cpus": "1", "memory": "2",
                    "node": "local", "flavor": "tiny",
                    "created_at": "2024-05-01T09:59:00+00:00"},
            "w-0": {"id": "w-0", "name": "dacirco-worker-000", "state": "Stopped",
                    "cpus": "1", "memory": "2", "node": "local", "flavor": "tiny",
                    "created_at": "2024-05-01T09:00:00+00:00"},
        }  # fmt: skip
        self.hits: Counter[str] = Counter()
        self.active = 0
        self.peak = 0
        self.page_size = 7

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.001)
            kind, _, item = path.strip("/").partition("/")
            table = self.jobs if kind == "jobs" else self.workers
            if not item:
                ids = list(table)
                after = request.url.params.get("after")
                start = ids.index(after) + 1 if after else 0
                chunk = ids[start : start + self.page_size]
                return httpx.Response(
                    200, json={"items": chunk, "has_more": start + len(chunk) < len(ids)}
                )
            if item == "gone":
                return httpx.Response(404, json={"detail": "not found"})
            return httpx.Response(200, json=table[item])
        finally:
            self.active -= 1


async def test_counts_every_job_shows_the_newest_and_caches_finished_ones() -> None:
    api = FakeApi(100)
    fetcher = SnapshotFetcher("http://x", limit=5, concurrency=4)
    async with AsyncClient("http://x", transport=httpx.MockTransport(api)) as c:
        snap = await fetcher.fetch(c)
        assert snap.total_jobs == 100
        assert snap.job_counts == {"Waiting": 50, "Started": 0, "Completed": 50, "Error": 0}
        assert snap.worker_counts == {"Booting": 0, "Idle": 1, "Busy": 0, "Stopped": 1}
        assert [j.id for j in snap.jobs] == [f"job-{i:04d}" for i in (99, 98, 97, 96, 95)]
        assert api.peak <= 4  # the semaphore bounds concurrent reads
        assert api.hits["/jobs"] == 15  # every page of the listing was followed
        idle = next(w for w in snap.workers if w.id == "w-1")
        assert idle.idle_since is not None and idle.idle_since.minute == 59  # last job's end

        api.hits.clear()
        await fetcher.fetch(c)
        item_reads = [p for p in api.hits if p.startswith("/jobs/")]
        assert len(item_reads) == 50  # only the unfinished jobs are read again
        assert "/workers/w-0" not in api.hits and api.hits["/workers/w-1"] == 1


async def test_vanished_items_are_skipped_and_errors_raised() -> None:
    api = FakeApi(3)
    api.jobs["gone"] = {}
    fetcher = SnapshotFetcher("http://x", limit=30)
    async with AsyncClient("http://x", transport=httpx.MockTransport(api)) as c:
        snap = await fetcher.fetch(c)
    assert snap.total_jobs == 3 and "gone" not in {j.id for j in snap.jobs}

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"detail": "boom", "message": "boom"})

    async with AsyncClient("http://x", transport=httpx.MockTransport(broken)) as c:
        with pytest.raises(ApiError) as info:
            await fetcher.fetch(c)
    assert describe_error(info.value) in {
        "HTTP 500 from /jobs: boom",
        "HTTP 500 from /workers: boom",
    }
