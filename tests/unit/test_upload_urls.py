"""A worker's PUT URL opens its output only while its task is open: it is asked for just before
the upload, lives minutes (not hours), and the local files route refuses it once the task is
done, failed, lost or canceled; a retried upload of a task still open lands."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from dacirco.api.app import create_controller_app
from dacirco.controller.errors import TaskNotYours
from dacirco.domain import output_name
from dacirco.protocol import TaskSpec
from dacirco.storage.base import output_key
from dacirco.storage.options import S3Config
from dacirco.storage.s3 import S3Storage
from tests.unit.api_stub import client
from tests.unit.conftest import BASE_URL, Make


async def _grant(h, worker, task) -> str:
    grant = await h.controller.upload_url(h.auth(worker.id), task.task_id)
    assert grant.url.startswith(BASE_URL)
    return grant.url.removeprefix(BASE_URL)


async def test_a_put_url_works_while_its_task_is_open_and_never_after(make: Make):
    h = make()
    job, worker, task = await h.assigned()
    app = create_controller_app(h.controller, h.controller.storage)
    url = await _grant(h, worker, task)
    dest = h.controller.storage.path(output_key(output_name(job)))
    async with client(app) as api:
        first = await api.put(url, content=b"a" * 100)
        assert first.status_code == 201, first.text
        retried = await api.put(url, content=b"b" * 100)  # its answer was lost: sent again
        assert retried.status_code == 201, retried.text
        await h.finish(worker, task)
        stored = dest.read_bytes()
        late = await api.put(url, content=b"replaced")
    assert late.status_code == 403
    assert "task" in late.json()["message"] and "no longer open" in late.json()["message"]
    assert dest.read_bytes() == stored != b"replaced"
    with pytest.raises(TaskNotYours, match="no longer open"):
        await h.controller.upload_url(h.auth(worker.id), task.task_id)


async def test_a_canceled_or_lost_task_loses_its_put_url(make: Make):
    h = make()
    job, worker, task = await h.assigned()
    app = create_controller_app(h.controller, h.controller.storage)
    url = await _grant(h, worker, task)
    await h.report(worker, task, "started")
    await h.runtime.crash(worker.id)  # lost: the job goes back to the queue
    async with client(app) as api:
        lost = await api.put(url, content=b"late")
        assert lost.status_code == 403, lost.text
        await h.controller.reconcile()
        second = await h.register(h.runtime.specs[-1])
        await h.controller.reconcile()
        retry = await h.poll(second)
        assert retry is not None and retry.task_id != task.task_id
        new_url = await _grant(h, second, retry)
        assert (await api.put(new_url, content=b"ok")).status_code == 201
        await h.controller.cancel(job.id)
        canceled = await api.put(new_url, content=b"after cancel")
    assert canceled.status_code == 403
    dest = h.controller.storage.path(output_key(output_name(job)))
    for _ in range(200):  # the canceled job's output is deleted in the background
        if not dest.exists():
            break
        await asyncio.sleep(0.01)
    assert not dest.exists()


async def test_the_signature_binds_object_and_task(make: Make):
    h = make()
    _, worker, task = await h.assigned()
    app = create_controller_app(h.controller, h.controller.storage)
    url = await _grant(h, worker, task)
    async with client(app) as api:
        other_task = url.replace(f"task={task.task_id}", "task=someone-else")
        assert (await api.put(other_task, content=b"x")).status_code == 403
        other_key = url.replace("output-videos/", "output-videos/x")
        assert (await api.put(other_key, content=b"x")).status_code == 403
        no_task = url.replace(f"task={task.task_id}&", "")
        refused = await api.put(no_task, content=b"x")
    assert refused.status_code == 403 and refused.json()["message"]


async def test_the_put_url_is_short_lived_and_not_in_the_task(make: Make):
    h = make()
    _, worker, task = await h.assigned()
    assert "output_url" not in TaskSpec.model_fields  # no PUT URL travels with the task
    grant = await h.controller.upload_url(h.auth(worker.id), task.task_id)
    ttl = h.controller.config.upload_url_ttl
    assert ttl <= 900 and grant.expires_in == ttl
    expires = int(parse_qs(urlsplit(grant.url).query)["expires"][0])
    assert expires == int(h.clock() + ttl)


def test_s3_put_urls_live_as_long_as_asked():
    # Presigning is local (no request): the URL says how long S3 will honour it.
    url = S3Storage(S3Config()).put_url("output-videos/o.mp4", 600, task="t1")
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["600"]
