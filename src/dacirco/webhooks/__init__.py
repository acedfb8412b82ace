"""Signed webhooks, delivered at least once from an outbox kept in SQLite.

A change and the deliveries that tell of it are stored in one transaction; a ``Deliverer``
then POSTs each stored delivery until the receiver answers 2xx, or gives it up. The API::

    # Checking a URL when it is given (a job's callback_url, --webhook URL):
    check_url(url: str, allow_private: bool) -> str   # normalised, or RefusedTarget(ValueError)
    WebhookOptions(url=None, secret=None, allow_private=False, give_up_after=86400.0,
                   progress_interval=10.0, timeout=10.0)   # pydantic; url checked by check_url

    # The service's secret (--webhook-secret, else <data_dir>/webhook-secret, created once):
    load_or_create_secret(data_dir: Path, given: str | None) -> bytes

    # Storing deliveries, in the store's own connection and transaction:
    db.executescript(OUTBOX_SCHEMA)       # when the database is opened (it commits: not in a step)
    enqueue(db: sqlite3.Connection, [(event_id, url, body_json, created_at), ...]) -> int
                                          # inside the step's BEGIN ... COMMIT, never its own
    purge(db, older_than: float) -> int   # delivered and given-up rows; the Deliverer does it

    # Delivering: one Deliverer per database file, on the service's event loop; it opens its
    # own connection (WAL) on its own thread, so the event loop never waits on the disk.
    deliverer = Deliverer(db_path: Path, secret: bytes, *, give_up_after=86400.0, timeout=10.0,
                          allow_private=False, concurrency=4, clock=time.time)
    await deliverer.start()   # creates the table if needed; rows left pending are due again
    deliverer.notify()        # after the COMMIT that enqueued rows: look now (any thread)
    deliverer.progress(event_id: str, url: str, body: str | bytes)
                              # now, once, best effort, not stored (the caller throttles it)
    await deliverer.close()   # deliveries under way are abandoned: sent again after start

    # Receivers, and tests:
    sign(secret: bytes, body: bytes, timestamp: int) -> str   # DaCirco-Signature's value
    verify(secret: bytes, body: bytes, header: str, now: float, tolerance=300.0) -> bool

Each delivery is a POST of the body with ``Content-Type: application/json``,
``DaCirco-Event-Id`` (receivers deduplicate on it: an event may arrive twice) and
``DaCirco-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. Retries,
order, targets refused: docs/api.md, "Webhooks".
"""

from __future__ import annotations

from dacirco.webhooks.addresses import RefusedTarget, check_url, resolve_checked
from dacirco.webhooks.deliverer import Deliverer
from dacirco.webhooks.options import WebhookOptions
from dacirco.webhooks.outbox import SCHEMA as OUTBOX_SCHEMA
from dacirco.webhooks.outbox import enqueue, purge
from dacirco.webhooks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    load_or_create_secret,
    sign,
    verify,
)

__all__ = [
    "EVENT_ID_HEADER",
    "OUTBOX_SCHEMA",
    "SIGNATURE_HEADER",
    "Deliverer",
    "RefusedTarget",
    "WebhookOptions",
    "check_url",
    "enqueue",
    "load_or_create_secret",
    "purge",
    "resolve_checked",
    "sign",
    "verify",
]
