"""No credential in a log line: signed URLs' query strings, bearer tokens, passwords in URLs and
registered secrets are replaced, through uvicorn's own access formatter too."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest

from dacirco.controller.events import event_record
from dacirco.redact import REDACTED, RedactSecrets, install, redact, register, uvicorn_log_config

SIGNED = "/files/output-videos/o.mp4?expires=1796303596&task=t1&sig=ce670225e8f4454f9bf9d2"
S3 = (
    "http://127.0.0.1:9000/videos/output-videos/o.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=minio%2F20260101%2Fus-east-1&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd"
)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (f'"PUT {SIGNED} HTTP/1.1" 201', "/files/output-videos/o.mp4?", "sig="),
        (f"upload failed: {S3}", "/videos/output-videos/o.mp4?", "X-Amz-Signature"),
        ("GET /jobs?access_token=abc123 HTTP/1.1", "GET /jobs?", "abc123"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer", "abc.def-123"),
        ("webhook to https://user:pa55@hooks.example/x failed", "https://", "pa55"),
    ],
)
def test_credentials_are_replaced_and_the_rest_kept(text, kept, gone):
    clean = redact(text)
    assert kept in clean and REDACTED in clean and gone not in clean


def test_ordinary_text_is_left_alone():
    for text in (
        "GET /jobs?limit=10&after=j1 HTTP/1.1",
        "why? because",
        "send 'Authorization: Bearer <token>'",
        "the job's state is Completed",
    ):
        assert redact(text) == text


def test_registered_secrets_are_replaced_anywhere():
    register("a-registered-secret-value", "short", None)
    assert redact("x a-registered-secret-value y") == f"x {REDACTED} y"
    assert redact("short stays") == "short stays"  # too short to be told from a word


@pytest.fixture
def uvicorn_loggers():
    """uvicorn's loggers as they were, after a test that configured them."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate) for n in names if (lg := logging.getLogger(n))
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_uvicorn_access_lines_and_tracebacks_are_redacted(uvicorn_loggers):
    stream = io.StringIO()
    config = uvicorn_log_config()
    config["handlers"]["access"]["stream"] = stream
    config["handlers"]["default"]["stream"] = stream
    logging.config.dictConfig(config)
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "PUT", SIGNED, "1.1", 201)
    try:
        raise ValueError(f"bad answer for {S3}")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    text = stream.getvalue()
    assert '"PUT /files/output-videos/o.mp4?[redacted] HTTP/1.1" 201' in text
    assert "ValueError: bad answer for http://127.0.0.1:9000/videos" in text
    assert "sig=" not in text and "X-Amz-Signature" not in text


def test_a_handler_with_the_filter_redacts_objects_and_mappings():
    stream = io.StringIO()
    handler = install(logging.StreamHandler(stream))
    install(handler)
    assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("to %s", _Url(SIGNED))
        logger.warning("%(url)s took %(n)d s", {"url": SIGNED, "n": 3})
    finally:
        logger.removeHandler(handler)
    assert "sig=" not in stream.getvalue()
    assert "took 3 s" in stream.getvalue()


def test_event_log_lines_hold_no_credential():
    record = event_record("EV10", 0.0, {"worker_id": "w", "task_id": "t", "error_message": S3})
    assert "X-Amz-Signature" not in record["error_message"]


class _Url:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text
