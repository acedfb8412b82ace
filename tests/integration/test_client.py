"""The Python client and `dacirco jobs` against a real service (`dacirco serve`, real workers
and ffmpeg): submit, list, show, wait, download, the typed errors, the command's output and
exit statuses; cancel and the event stream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dacirco.catalog.probe import probe
from dacirco.client import (
    AsyncClient,
    Client,
    Conflict,
    Invalid,
    NotFound,
    Unauthorized,
    Unreachable,
)
from dacirco.client.cli import jobs_app
from tests.conftest import free_port

pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture(scope="module")
def svc(catalog_dir, tmp_path_factory):
    from tests.conftest import start_service

    service = start_service(
        catalog_dir, tmp_path_factory.mktemp("client"), "--max-workers", "1",
        "--max-idle-time", "60",
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture
def api(svc):
    with Client(svc.url) as client:
        yield client


def jobs(*args: str, url: str | None = None):  # type: ignore[no-untyped-def]
    """`dacirco jobs ARGS` in this process; ``url`` through DACIRCO_URL."""
    return runner.invoke(jobs_app, list(args), env={"DACIRCO_URL": url} if url else None)


# ---- the client ------------------------------------------------------------------------------
def test_submit_list_show_wait_and_download(api, svc, tmp_path):
    job_id = api.submit("bbb_2.mp4", 1200, "ultrafast", codec="hevc")
    assert job_id in api.jobs().items
    assert job_id in list(api.iter_jobs(page_size=1))
    job = api.job(job_id)
    assert (job.id, job.id_video, job.bitrate, job.speed, job.codec) == (
        job_id, "bbb_2.mp4", 1200, "ultrafast", "hevc",
    )  # fmt: skip
    assert api.state(job_id) in {"Waiting", "Started", "Completed"}

    done = api.wait(job_id, timeout=120, poll=0.2)
    assert done.state == "Completed", done.error
    assert done.output and done.delay is not None and done.delay > 0
    assert api.state(job_id) == "Completed"

    out = api.download(job_id, tmp_path)
    assert out.parent == tmp_path and out.stat().st_size > 0
    made = probe(out)
    source = probe(svc.data_dir / "videos" / "input-videos" / "bbb_2.mp4")
    assert made.video_codec == "hevc"
    assert abs(made.duration - source.duration) <= 0.2

    (worker_id,) = api.workers().items
    assert list(api.iter_workers()) == [worker_id]
    worker = api.worker(worker_id)
    assert worker.jobs_done >= 1 and api.worker_state(worker_id) == worker.state
    assert "dacirco_" in api.metrics_text() and api.health()


async def test_the_async_client_submits_and_waits(svc):
    async with AsyncClient(svc.url) as api:
        sends = (api.submit("bbb_0.mp4", 800, "ultrafast", reuse=False) for _ in range(2))
        ids = await asyncio.gather(*sends)
        assert set(ids) <= set(await _ids(api))
        done = await asyncio.gather(*(api.wait(i, timeout=120, poll=0.2) for i in ids))
        assert [j.state for j in done] == ["Completed", "Completed"]
        assert (await api.job(ids[0])).delay is not None


async def _ids(api: AsyncClient) -> list[str]:
    return [i async for i in api.iter_jobs(page_size=2)]


def test_typed_errors_of_a_real_service(api):
    for call in (api.job, api.state, api.output_url, api.worker):
        with pytest.raises(NotFound, match="'no-such-id' not found") as info:
            call("no-such-id")
        assert info.value.status == 404
    with pytest.raises(NotFound, match="after"):
        api.jobs(after="no-such-id")

    with pytest.raises(Invalid) as bad:
        api.submit("bbb_0.mp4", 9000, "ultrafast")
    assert bad.value.field == "bitrate" and "less than or equal to 8000" in bad.value.message
    with pytest.raises(Invalid) as bad:
        api.submit("bbb_0.mp4", 1000, "slow")
    assert bad.value.field == "speed"
    with pytest.raises(Invalid, match="catalog"):
        api.submit("bbb_99.mp4", 1000, "ultrafast")

    job_id = api.submit("bbb_5.mp4", 1000, "ultrafast", reuse=False)
    with pytest.raises(Conflict, match="no output yet") as conflict:
        api.output_url(job_id)  # just submitted: not Completed yet
    assert conflict.value.status == 409
    assert api.wait(job_id, timeout=120, poll=0.2).state == "Completed"

    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(Unreachable):
        nowhere.jobs()


# ---- dacirco jobs ----------------------------------------------------------------------------
def test_the_command_submits_waits_shows_and_lists(svc):
    result = jobs("submit", "bbb_1.mp4", "--bitrate", "900", "--url", svc.url)
    assert result.exit_code == 0, result.output
    job_id = result.stdout.strip()
    assert len(result.stdout.splitlines()) == 1 and job_id

    result = jobs("wait", job_id, "--timeout", "120", "--poll", "0.2", "--json", url=svc.url)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["id"], body["state"], body["bitrate"]) == (job_id, "Completed", 900)

    result = jobs("show", job_id, url=svc.url)
    assert result.exit_code == 0, result.output
    assert job_id in result.stdout and "Completed" in result.stdout and "bbb_1.mp4" in result.stdout
    assert "timings.uploaded" in result.stdout

    result = jobs("list", "--json", url=svc.url)
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert page["has_more"] is False
    assert job_id in [j["id"] for j in page["items"]]

    result = jobs("list", url=svc.url)
    assert result.exit_code == 0 and job_id in result.stdout and "Completed" in result.stdout

    result = jobs("list", "--ids", "--limit", "1", url=svc.url)
    assert result.exit_code == 0, result.output
    (first,) = result.stdout.split()
    assert f"more: --after {first}" in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["show", "no-such-id"], 2, "error: job 'no-such-id' not found"),
        (["wait", "no-such-id"], 2, "error: job 'no-such-id' not found"),
        (["submit", "bbb_0.mp4", "--bitrate", "9000"], 2, "error: bitrate: Input should be"),
        (["submit", "bbb_99.mp4", "--bitrate", "900"], 2, "catalog"),
        (["list", "--after", "no-such-id"], 2, "error: after:"),
    ],
)
def test_the_command_says_what_went_wrong(svc, args, status, words):
    result = jobs(*args, url=svc.url)
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert words in line and "Traceback" not in result.output

    as_json = jobs(*args, "--json", url=svc.url)
    assert as_json.exit_code == status
    error = json.loads(as_json.stderr)
    assert error["status"] in (404, 422) and words.removeprefix("error: ") in error["message"]


def test_the_command_on_an_unreachable_service_exits_1():
    url = f"http://127.0.0.1:{free_port()}"
    result = jobs("show", "x", "--url", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach {url}/jobs/x: ")
    assert "Traceback" not in result.output
    usage = jobs("submit", "bbb_0.mp4", "--url", url)  # no --bitrate
    assert usage.exit_code == 2 and "--bitrate" in usage.output


def test_a_service_with_tokens_wants_one(service_factory):
    secured = service_factory("--api-token", "s3cret-token")
    with Client(secured.url) as anonymous, pytest.raises(Unauthorized) as missing:
        anonymous.jobs()
    with Client(secured.url, token="wrong") as wrong, pytest.raises(Unauthorized) as refused:
        wrong.jobs()
    assert (missing.value.status, refused.value.status) == (401, 403)
    with Client(secured.url, token="s3cret-token") as api:
        assert api.jobs().items == []

    result = jobs("list", "--ids", url=secured.url)
    assert result.exit_code == 2
    assert "needs an API token: --api-token or DACIRCO_API_TOKEN" in result.stderr
    result = runner.invoke(
        jobs_app, ["list", "--ids", "--url", secured.url], env={"DACIRCO_API_TOKEN": "s3cret-token"}
    )
    assert result.exit_code == 0 and result.stdout == "", result.output


def test_the_installed_command_runs_as_a_process(svc):
    env = {**os.environ, "DACIRCO_URL": svc.url}
    cmd = [sys.executable, "-m", "dacirco.cli", "jobs"]
    run = subprocess.run(
        [*cmd, "submit", "bbb_0.mp4", "-b", "700", "-s", "fast", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    job_id = json.loads(run.stdout)["id"]
    run = subprocess.run(
        [*cmd, "wait", job_id, "--timeout", "120", "--poll", "0.2"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"job {job_id}: Completed in ")
    run = subprocess.run([*cmd, "show", "nope"], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip() == "error: job 'nope' not found"


# ---- cancel and the event stream -------------------------------------------------------------
def test_cancel_a_job_and_what_follows(api, svc):
    job_id = api.submit("bbb_5.mp4", 1000, "ultrafast", reuse=False)
    canceled = api.cancel(job_id)
    assert (canceled.id, canceled.state) == (job_id, "Canceled")
    assert api.cancel(job_id).state == "Canceled"  # again: the same answer
    assert api.wait(job_id, timeout=10).state == "Canceled"
    with pytest.raises(Conflict):
        api.output_url(job_id)
    with pytest.raises(NotFound):
        api.cancel("no-such-id")

    result = jobs("wait", job_id, url=svc.url)
    assert result.exit_code == 3 and f"job {job_id}: Canceled" in result.stdout

    done = api.submit("bbb_0.mp4", 800, "ultrafast", reuse=False)
    assert api.wait(done, timeout=120, poll=0.2).state == "Completed"
    with pytest.raises(Conflict, match="Completed") as refused:
        api.cancel(done)
    assert refused.value.status == 409
    result = jobs("cancel", done, url=svc.url)
    assert result.exit_code == 2 and "Completed" in result.stderr

    other = api.submit("bbb_1.mp4", 800, "ultrafast", reuse=False)
    result = jobs("cancel", other, "--json", url=svc.url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "Canceled"


@pytest.mark.timeout(180)
def test_follow_a_job_through_the_event_stream_and_resume_it(api, svc):
    job_id = api.submit("bbb_0.mp4", 800, "ultrafast", reuse=False)
    events = list(api.events(job=job_id, after=0))  # replayed from the start, then live
    assert {e.id for e in events} == {job_id} and {e.kind for e in events} == {"job"}
    assert events[0].state == "Waiting" and events[0].previous is None
    assert events[-1].state == "Completed" and events[-1].final
    assert events[-1].job is not None and events[-1].job.state == "Completed"
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))

    resumed = list(api.events(job=job_id, after=seqs[0]))
    assert [e.seq for e in resumed] == seqs[1:]

    async def follow() -> list[int]:
        async with AsyncClient(svc.url) as client:
            return [e.seq async for e in client.events(job=job_id, after=0)]

    assert asyncio.run(follow()) == seqs

    result = jobs("events", "--job", job_id, "--after", "0", "--json", url=svc.url)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["seq"] for line in lines] == seqs and lines[-1]["state"] == "Completed"
    result = jobs("events", "--after", "0", "--count", "2", url=svc.url)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2 and result.stdout.startswith("#")


@pytest.mark.timeout(180)
def test_the_stream_resumes_across_a_service_restart(catalog_dir, tmp_path):
    from tests.conftest import start_service

    port = free_port()
    svc = start_service(catalog_dir, tmp_path, "--max-workers", "1", port=port)
    try:
        with Client(svc.url) as api:
            before = api.submit("bbb_0.mp4", 800, "ultrafast", reuse=False)
            stream = api.events(after=0)
            seen = [next(stream)]
            while not (seen[-1].id == before and seen[-1].final):
                seen.append(next(stream))
            svc.stop()
            svc = start_service(catalog_dir, tmp_path, "--max-workers", "1", port=port)
            after = api.submit("bbb_1.mp4", 800, "ultrafast", reuse=False)
            while seen[-1].id != after:
                seen.append(next(stream))  # the same stream: reconnected, resumed
            stream.close()
    finally:
        svc.stop()
    seqs = [e.seq for e in seen]
    assert seqs == sorted(set(seqs)), seqs  # nothing twice, nothing out of order
    assert seen[-1].state == "Waiting" and seen[-1].previous is None


def test_reuse_through_the_client_and_the_command(api, svc):
    first = api.submit("bbb_3.mp4", 700, "ultrafast")
    assert api.wait(first, timeout=120, poll=0.2).state == "Completed"
    again = api.job(api.submit("bbb_3.mp4", 700, "ultrafast"))  # Completed at once
    assert (again.state, again.reused_from) == ("Completed", first)
    result = jobs("wait", again.id, url=svc.url)
    assert result.exit_code == 0 and f"(reused from job {first})" in result.stdout
    result = jobs("submit", "bbb_3.mp4", "-b", "700", "--no-reuse", "--json", url=svc.url)
    assert result.exit_code == 0, result.output
    own = json.loads(result.stdout)["id"]
    job = api.wait(own, timeout=120, poll=0.2)
    assert (job.state, job.reused_from) == ("Completed", None) and job.output != again.output
