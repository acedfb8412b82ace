"""Schemathesis over the `/openapi.json` of a running `dacirco serve` (API tokens on), every
check of schemathesis on every operation: generated requests (valid and invalid) never get a
5xx, invalid ones are refused, valid ones accepted (but for the catalog, see below), and
every answer conforms to the schema (status code, content type, headers, body, `Allow`).

Bounded: 20 examples per operation, no deadline. The worker protocol (`/worker/...`) needs a
worker token, which only the workers the controller starts ever get, and `/files/...` needs
an HMAC signature made with the service's secret: the fuzzer can give neither, so there every
call stops at 401/403 (or at 422 before the credentials are looked at), each refusal in the
schema."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    positive_data_acceptance,
)

from tests.conftest import Service, start_service

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a failure can be replayed
)


@pytest.fixture(scope="module")
def fuzzed(catalog_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(
        catalog_dir,
        tmp_path_factory.mktemp("fuzz"),
        "--max-workers", "1", "--max-queue", "50", "--api-token", TOKEN,
    )  # fmt: skip
    try:
        yield svc
    finally:
        svc.stop()
        assert "Traceback" not in svc.stderr_path.read_text(errors="replace"), svc.tail(60)


# Answers a schema-valid request may get besides 2xx: the schema cannot say which movies the
# catalog holds (422 "not in the catalog"), which ids exist (404), or when the queue is full.
# A callback_url on a refused host is a 422 too.
# What a JSON schema cannot say of streaming outputs: one output per container, and the
# renditions counted over every output.
UNSAID_BY_SCHEMA = (
    "outputs: at most one output per container",
    "outputs: at most 10 renditions in all",
    "preset: unknown preset",  # the presets are the service's state, as the catalog is
)


def accepted_or_explained(case, response) -> None:  # type: ignore[no-untyped-def]
    if response.status_code < 400 or response.status_code in (401, 403, 404, 409, 429):
        return
    message = response.json().get("message", "")
    if response.status_code == 422 and message.startswith("callback_url: webhook URL"):
        return  # which hosts are refused (private networks, ...) is no schema's to say
    if response.status_code == 422 and message.startswith(UNSAID_BY_SCHEMA):
        return
    assert response.status_code == 422 and "is not in the catalog" in message, (
        f"schema-valid {case.method} {case.formatted_path} got {response.status_code}: "
        f"{response.text[:300]}"
    )


def fuzz(
    svc: Service, credentialed: bool, headers: dict[str, str] | None, **call: object
) -> tuple[list[str], int]:
    """Run the generated cases (valid and invalid) of the public operations, or of the
    credentialed ones; the failures, one line each, and the number of cases run.

    (schemathesis.pytest.from_fixture reads a pytest private that pytest 9 no longer has:
    the strategies are driven here with hypothesis directly.)"""
    schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
    failures: list[str] = []
    count = 0

    def runner(operation, mode: GenerationMode):  # type: ignore[no-untyped-def]
        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            if operation.path == "/events":  # the stream's end, not its read timeout
                case.query = {**(case.query or {}), "follow": "false"}
            try:
                response = case.call_and_validate(base_url=svc.url, headers=headers, **call)
                if mode == GenerationMode.POSITIVE and not credentialed:
                    accepted_or_explained(case, response)
            except (Exception, BaseExceptionGroup) as exc:
                reason = " ".join(str(exc).split())[:400]
                failures.append(f"{operation.label} [{mode.value}]: {reason}")

        return run

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(("/worker/", "/files/")) == credentialed:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                # No invalid request exists for an operation without parameters (/health).
                with contextlib.suppress(Unsatisfiable):
                    runner(operation, mode)()
    return failures, count


def test_public_operations_conform_and_never_fail(fuzzed: Service) -> None:
    # Every check; positive_data_acceptance as accepted_or_explained (the catalog's 422).
    failures, count = fuzz(
        fuzzed, credentialed=False, headers=AUTH, excluded_checks=[positive_data_acceptance]
    )
    print(f"\nschema fuzz, public operations: {count} cases, {len(failures)} failures")
    assert not failures, "\n".join(dict.fromkeys(failures))


def test_credentialed_operations_never_fail(fuzzed: Service) -> None:
    failures, count = fuzz(fuzzed, credentialed=True, headers=None)
    print(f"\nschema fuzz, worker protocol and files: {count} cases, {len(failures)} failures")
    assert not failures, "\n".join(dict.fromkeys(failures))
