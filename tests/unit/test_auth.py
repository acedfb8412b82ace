"""Client API tokens and backpressure, in process: who may call which route, what a full
queue answers, and that a token is never written anywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dacirco.api.app import create_controller_app
from dacirco.api.auth import check_auth, is_loopback
from dacirco.auth_options import TokenError, service_tokens
from dacirco.cli import app as cli_app
from dacirco.controller.backpressure import retry_after
from dacirco.controller.errors import QueueFull
from dacirco.service import ConfigError, build, validate
from dacirco.service_config import ServiceConfig
from tests.unit.api_stub import CONTROLLER_URL, StubController, client, controller_app
from tests.unit.conftest import Make

GOOD = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "ultrafast"}
TOKEN, OTHER = "s3cret-token-1", "s3cret-token-2"
PUBLIC = ["/jobs", "/jobs/j00000", "/jobs/j00000/state", "/workers", "/workers/w00000"]


def _with_tokens(stub: StubController, tokens: tuple[str, ...]):
    app = controller_app(stub)
    app.state.api_tokens = tokens  # what create_*_app(api_tokens=...) sets
    return app


def _tokened_app(split: bool):
    """The service's app with tokens on; or the split `rest-api` app with tokens, forwarding
    with its own token to a controller app that requires it."""
    from dacirco.api.app import create_api_app
    from dacirco.api.backend import LocalBackend

    inner = create_api_app(CONTROLLER_URL, api_tokens=(TOKEN, OTHER))
    inner.state.backend = LocalBackend(StubController(jobs=1, workers=1))  # type: ignore[arg-type]
    if not split:
        return inner
    return create_api_app(
        CONTROLLER_URL,
        transport=httpx.ASGITransport(app=inner),
        api_tokens=(TOKEN,),
        controller_token=OTHER,
    )


@pytest.mark.parametrize("split", [False, True], ids=["service", "split"])
async def test_public_routes_need_the_token_when_tokens_are_on(split):
    async with client(_tokened_app(split)) as api:
        for path in PUBLIC:
            none = await api.get(path)
            assert none.status_code == 401, path
            assert none.headers["www-authenticate"].startswith("Bearer")
            assert "API token is required" in none.json()["message"]
            assert none.json()["detail"]
            wrong = await api.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403, path
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
            assert "nope" not in wrong.text  # a wrong token is not echoed either
            basic = await api.get(path, headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401, path
            right = await api.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200, (path, right.text)
        assert (await api.post("/jobs", json=GOOD)).status_code == 401
        posted = await api.post("/jobs", json=GOOD, headers={"Authorization": f"Bearer {TOKEN}"})
        assert posted.status_code == 201
        # Open routes stay open.
        for path in ("/health", "/docs", "/openapi.json"):
            assert (await api.get(path)).status_code == 200, path
        schema = (await api.get("/openapi.json")).json()
        assert "apiToken" in schema["components"]["securitySchemes"]
        assert "401" in schema["paths"]["/jobs"]["post"]["responses"]


async def test_every_configured_token_is_accepted_and_none_is_needed_when_off():
    async with client(_tokened_app(False)) as api:
        for token in (TOKEN, OTHER):
            headers = {"Authorization": f"Bearer {token}"}
            assert (await api.get("/jobs", headers=headers)).status_code == 200
    async with client(controller_app(StubController(jobs=1))) as api:
        assert (await api.get("/jobs")).status_code == 200
        schema = (await api.get("/openapi.json")).json()
        assert "securitySchemes" not in schema.get("components", {})


async def test_split_api_says_so_when_the_controller_refuses_its_own_token():
    from dacirco.api.app import create_api_app
    from dacirco.api.backend import LocalBackend

    inner = create_api_app(CONTROLLER_URL, api_tokens=(TOKEN,))
    inner.state.backend = LocalBackend(StubController(jobs=1))  # type: ignore[arg-type]
    outer = create_api_app(
        CONTROLLER_URL, transport=httpx.ASGITransport(app=inner), controller_token="stale"
    )
    async with client(outer) as api:
        resp = await api.get("/jobs")
    assert resp.status_code == 502
    assert "refused this API's controller token" in resp.json()["message"]
    assert "stale" not in resp.text


async def test_worker_protocol_keeps_its_own_tokens(make: Make):
    h = make()
    app = create_controller_app(h.controller, h.controller.storage, (TOKEN,))
    job = await h.submit()
    await h.controller.reconcile()
    spec = h.runtime.specs[-1]
    async with client(app) as api:
        assert (await api.get("/worker/task?wait=0")).status_code == 401
        client_token = {"Authorization": f"Bearer {TOKEN}"}
        assert (await api.get("/worker/task?wait=0", headers=client_token)).status_code == 401
        worker_token = {"Authorization": f"Bearer {spec.token}"}
        # A worker's token opens the worker protocol, not the public routes.
        assert (await api.get("/jobs", headers=worker_token)).status_code == 403
        register = {
            "worker_id": spec.worker_id, "name": spec.name, "node": "n", "cpus": 2,
            "memory_gb": 4.0,
        }  # fmt: skip
        resp = await api.post("/worker/register", json=register, headers=worker_token)
        assert resp.status_code == 200, resp.text
        await h.controller.reconcile()
        task = await api.get("/worker/task?wait=0", headers=worker_token)
        assert task.status_code == 200 and task.json()["job_id"] == job.id
        # The task's signed URLs keep their own rule (a signature, no bearer token), checked
        # on the storage's clock: the harness's, here moved past the URL's life.
        url = task.json()["input_url"].removeprefix("http://127.0.0.1:1")
        assert url.startswith("/files/")
        h.clock.advance(h.controller.config.url_ttl + 1)
        expired = await api.get(url, headers=client_token)
        assert expired.status_code == 403 and "expired" in expired.json()["message"]
        tampered = url.replace("sig=", "sig=0")
        assert (await api.get(tampered)).status_code == 403


# ---- backpressure ----------------------------------------------------------------------------
async def test_a_full_queue_refuses_with_a_retry_time_and_stores_nothing(make: Make):
    h = make(max_queue=2)
    await h.submit()
    await h.submit()
    with pytest.raises(QueueFull) as refused:
        await h.submit()
    assert refused.value.status == 429 and refused.value.retry_after >= 1
    assert "2 jobs are waiting (--max-queue 2)" in str(refused.value)
    assert len(h.controller.jobs) == 2
    jobs, _, _ = await h.controller.store.load()
    assert len(jobs) == 2
    assert h.codes().count("EV1") == 2
    # A job leaves the queue (assigned): there is room again.
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    assert await h.poll(worker) is not None
    await h.submit()


async def test_concurrent_submissions_never_pass_the_limit(make: Make):
    h = make(max_queue=3)
    results = await asyncio.gather(*(h.submit() for _ in range(20)), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QueueFull)]
    assert len(accepted) == 3 and len(refused) == 17
    assert h.controller.queued == 3 and h.controller._admitting == 0


async def test_no_limit_with_zero(make: Make):
    h = make(max_queue=0)
    for _ in range(30):
        await h.submit()
    assert h.controller.queued == 30


async def test_retry_after_follows_the_recent_job_durations(make: Make):
    h = make(call_interval=2.5)
    assert retry_after(h.controller) == 3  # nothing done yet: the call interval, rounded up
    _, worker, task = await h.assigned()
    h.clock.advance(10)
    await h.finish(worker, task)  # 14 s from assignment to upload
    # None busy now: the mean shared by max_workers (2) workers.
    assert retry_after(h.controller) == 7
    await h.submit()
    await h.controller.reconcile()
    assert h.controller.workers[worker.id].state.value == "Busy"
    assert retry_after(h.controller) == 14  # one busy worker: the whole mean


async def test_the_api_answers_429_with_retry_after_in_both_modes(make: Make):
    h = make(max_queue=1)
    service = create_controller_app(h.controller, None)
    from tests.unit.api_stub import split_app

    for app in (service, split_app(service)):
        async with client(app) as api:
            first = await api.post("/jobs", json=GOOD)
            if first.status_code == 201:
                assert app is service
            full = await api.post("/jobs", json=GOOD)
            assert full.status_code == 429, full.text
            assert int(full.headers["retry-after"]) >= 1
            body = full.json()
            assert "queue is full" in body["message"] and body["detail"]
    assert len(h.controller.jobs) == 1


# ---- where a service may listen, and tokens never written -----------------------------------
@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("", False), ("10.1.2.3", False),
     ("example.org", False)],
)  # fmt: skip
def test_loopback_addresses(host, local):
    assert is_loopback(host) is local
    assert (check_auth(host, (), False) is None) is local
    assert check_auth(host, ("t",), False) is None
    assert check_auth(host, (), True) is None


def test_listening_beyond_the_machine_without_a_token_is_refused():
    with pytest.raises(ConfigError, match="give an API token"):
        validate(ServiceConfig.of(host="0.0.0.0"))
    validate(ServiceConfig.of(host="0.0.0.0", api_tokens=("t",)))
    validate(ServiceConfig.of(host="0.0.0.0", insecure_no_auth=True))
    with pytest.raises(ConfigError, match="--max-queue must not be negative"):
        validate(ServiceConfig.of(max_queue=-1))
    assert TOKEN not in repr(ServiceConfig.of(api_tokens=(TOKEN,)))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--host", "0.0.0.0"], "listens beyond this machine: give an API token"),
        (["--max-queue", "-1"], "--max-queue must not be negative"),
        (["--api-token", "has space"], "API token #1: only printable ASCII without spaces"),
        (["--api-token-file", "missing.txt"], "--api-token-file missing.txt: cannot be read"),
    ],
)
def test_serve_refuses_in_one_line_and_creates_nothing(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DACIRCO_API_TOKENS", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output and "has space" not in result.output
    assert not (tmp_path / "d").exists()


def test_rest_api_refuses_to_listen_beyond_the_machine_without_a_token(monkeypatch):
    monkeypatch.delenv("DACIRCO_API_TOKENS", raising=False)
    result = CliRunner().invoke(cli_app, ["rest-api", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "give an API token" in result.output


def test_tokens_from_options_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DACIRCO_API_TOKENS", " env-1 ,env-2,,")
    file = tmp_path / "tokens"
    file.write_text("# clients\nfile-1\n  file-2  # the monitor\n\nenv-1\n")
    tokens = service_tokens(["opt-1", "env-2"], file)
    assert tokens == ("opt-1", "env-2", "env-1", "file-1", "file-2")
    monkeypatch.delenv("DACIRCO_API_TOKENS")
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(TokenError, match="holds no token"):
        service_tokens(None, empty)
    assert service_tokens(None, None) == ()


def test_no_token_in_the_event_log_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = ServiceConfig.of(
        data_dir=tmp_path / "data",
        event_log_file=tmp_path / "tc-events-01.txt",
        api_tokens=(TOKEN, OTHER),
        max_queue=7,
    )
    app, controller = build(options)
    try:
        config = json.loads(Path(f"{tmp_path}/tc-events-01.config.txt").read_text())
        assert config["max_queue"] == 7
        assert config["api_tokens"] == "2 redacted"
        written = "".join(p.read_text(errors="replace") for p in tmp_path.glob("tc-events-*"))
        assert TOKEN not in written and OTHER not in written
        assert app.state.api_tokens == (TOKEN, OTHER)
    finally:
        controller.store.close()
        controller.events.close()
        app.state.data_dir_lock.close()


def test_clients_send_the_token_and_the_monitor_says_what_a_401_means(monkeypatch):
    from dacirco.client import Unauthorized
    from dacirco.monitor import _client as monitor_client
    from dacirco.monitor import describe_error
    from dacirco.scenario.player import _client as player_client

    sent = player_client("http://x", None, TOKEN).http.headers
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in player_client("http://x", None, None).http.headers
    assert monitor_client("http://x", TOKEN).http.headers["authorization"] == f"Bearer {TOKEN}"
    request = httpx.Request("GET", "http://x/jobs")
    for status, words in ((401, "needs an API token (--api-token"), (403, "token was refused")):
        response = httpx.Response(status, request=request)
        exc = httpx.HTTPStatusError("refused", request=request, response=response)
        assert words in describe_error(exc)
        refused = Unauthorized(status, "Not authenticated", path="/jobs")
        assert describe_error(refused).startswith(f"HTTP {status} from /jobs: ")
        assert words in describe_error(refused)


async def test_metrics_need_the_client_token_when_tokens_are_on(make: Make):
    h = make()
    app = create_controller_app(h.controller, h.controller.storage, (TOKEN,))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 401
        bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 403
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "dacirco_queue_length" in ok.text
    open_app = create_controller_app(h.controller, h.controller.storage)
    transport = httpx.ASGITransport(app=open_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 200
