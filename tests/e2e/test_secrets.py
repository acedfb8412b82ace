"""No secret leaks from a real service run through a job: no line of any log it wrote (its
stderr with the access log on, the workers' logs, the event log and its companions) holds a
signed URL's signature or a token, and no command line of its process tree holds a token."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import SIGNATURES, Service, leaks, log_files, start_service

pytestmark = pytest.mark.slow

TOKEN = "e2e-client-token-5f0c1d77"
WEBHOOK_SECRET = "e2e-webhook-secret-9a7b3c"
SERVICE_SECRETS_ENV = ("DACIRCO_API_TOKENS", "DACIRCO_WEBHOOK_SECRET", "DACIRCO_S3_SECRET_KEY")


def process_tree(svc: Service) -> list[psutil.Process]:
    root = psutil.Process(svc.proc.pid)
    return [root, *root.children(recursive=True)]


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_no_secret_in_any_log_line_or_command_line(
    catalog_dir, tmp_path, monkeypatch, request, storage
):
    monkeypatch.setenv("DACIRCO_API_TOKENS", TOKEN)
    monkeypatch.setenv("DACIRCO_WEBHOOK_SECRET", WEBHOOK_SECRET)
    args = ["--log-level", "info"]  # the access log on, as by default
    secrets = [TOKEN, WEBHOOK_SECRET]
    if storage == "s3":
        server = request.getfixturevalue("s3_catalog")
        host, port = server.endpoint.rsplit(":", 1)
        monkeypatch.setenv("DACIRCO_S3_SECRET_KEY", server.secret_key)
        args += ["--storage", "s3", "--minio-server", host, "--minio-port", port]
        args += ["--minio-access-key", server.access_key]
        secrets.append(server.secret_key)
    svc = start_service(catalog_dir, tmp_path, *args)
    worker_tokens: list[str] = []
    try:
        svc.client.headers["Authorization"] = f"Bearer {TOKEN}"
        job_id = svc.submit()
        svc.wait_for(lambda: svc.worker_pids(), what="a worker process")
        # While the worker lives: no token on any command line of the tree; the worker holds
        # its own token in its environment and none of the service's secrets.
        for proc in process_tree(svc):
            cmdline = " ".join(proc.cmdline())
            if "dacirco.worker" in cmdline:
                env = proc.environ()
                worker_tokens.append(env["DACIRCO_WORKER_TOKEN"])
                assert not set(SERVICE_SECRETS_ENV) & set(env), "service secrets in a worker"
            for secret in secrets:
                assert secret not in cmdline, f"a secret on the command line of {proc.pid}"
        assert worker_tokens
        for proc in process_tree(svc):
            assert not any(t in " ".join(proc.cmdline()) for t in worker_tokens)

        assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
        output = svc.client.get(f"/jobs/{job_id}/output", follow_redirects=True)
        assert output.status_code == 200 and len(output.content) > 1000
        # Mistakes of clients must not land in the log either.
        assert svc.client.get("/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 403
        # A token put in the query: refused (no such parameter), and its line still redacted.
        misplaced = svc.client.get(f"/jobs?access_token={TOKEN}")
        assert misplaced.status_code == 422 and TOKEN not in misplaced.text
    finally:
        svc.stop()

    stderr = svc.stderr_path.read_text(errors="replace")
    assert '"POST /jobs HTTP/1.1" 201' in stderr  # the access log was on
    if storage == "local":
        assert "PUT /files/output-videos/" in stderr  # the worker's upload went through it
    assert {p.name for p in log_files(svc)} >= {svc.stderr_path.name, svc.event_log.name}
    assert leaks(svc, (*SIGNATURES, *secrets, *worker_tokens)) == []
