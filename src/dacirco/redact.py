"""Secrets out of every log line: the query string of a signed URL (and a play URL's signature,
in its path), bearer tokens, passwords in URLs and the service's own secrets are replaced
before a line is written.

A signed URL is a credential for as long as it lives: an access log that keeps it hands its
object to anyone who reads the log. ``RedactSecrets`` is put on every handler the service, its
workers and the commands write through (uvicorn's access and error logs included, see
``uvicorn_log_config``); ``redact`` is for texts that reach a log another way (the event log,
a worker's failure message).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
# Query parameters that are credentials: a query string holding one goes whole (its other
# parameters, the expiry or the task, say nothing worth the risk of a missed one).
SECRET_PARAMS = frozenset(
    {
        "sig", "signature", "token", "access_token", "api_key", "apikey", "key", "secret",
        "password", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    }
)  # fmt: skip
_QUERY = re.compile(r"\?[^\s\"'<>#]+")
# A play URL's signature is in its path: /play/<folder>/<expires>/<sig>/<file>.
_PLAY = re.compile(r"(/play/[^/\s]+/\d+/)[0-9a-fA-F]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{4,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@")
MIN_KNOWN = 6  # a shorter "secret" would blank out ordinary words

_known: tuple[str, ...] = ()  # longest first: a secret inside another goes with it


def register(*secrets: str | None) -> None:
    """Values that must never be written as they are (tokens, keys) wherever they show up."""
    global _known
    given = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_KNOWN}
    _known = tuple(sorted(given | set(_known), key=len, reverse=True))


def _query(match: re.Match[str]) -> str:
    text = match.group(0)
    names = {part.split("=", 1)[0].lower() for part in re.split(r"[&;]", text[1:])}
    return "?" + REDACTED if names & SECRET_PARAMS else text


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[redacted]``."""
    # Each rule runs only on a text that could hold its kind (most lines hold none: the
    # simulator writes millions of event-log lines).
    if "?" in text:
        text = _QUERY.sub(_query, text)
    if "/play/" in text:
        text = _PLAY.sub(rf"\1{REDACTED}", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    if "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):  # %d, %f keep their numbers
        return value
    text = str(value)  # a URL object, an exception: what its %s would write
    clean = redact(text)
    return value if clean == text else clean


class RedactSecrets(logging.Filter):
    """A handler's filter: the record's message, arguments, traceback and stack, redacted.

    The arguments are cleaned one by one rather than the message formatted here, because
    some formatters read them (uvicorn's access log formats its request line itself).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        else:
            record.msg = _clean(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(v) for v in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(handler: logging.Handler) -> logging.Handler:
    """``handler`` with the redacting filter (once)."""
    if not any(isinstance(f, RedactSecrets) for f in handler.filters):
        handler.addFilter(RedactSecrets())
    return handler


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config with the redacting filter on each of its handlers: its
    access log writes every request line, query string included."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact"]
    return config
