"""The outbox: webhook deliveries kept in SQLite, written in the same transaction as the
change they tell of, and taken from there by the deliverer until each one is delivered or
given up."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'gave_up')),
    last_error TEXT,
    delivered_at REAL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_at);
"""

PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "gave_up"


@dataclass(frozen=True)
class Delivery:
    """A pending row, as the deliverer takes it."""

    id: int
    event_id: str
    url: str
    body: str
    created_at: float
    attempts: int


def enqueue(db: sqlite3.Connection, items: Iterable[tuple[str, str, str, float]]) -> int:
    """Add deliveries ``(event_id, url, body_json, created_at)``, due at once, inside the
    caller's open transaction (neither BEGIN nor COMMIT here): the change and the deliveries
    that tell of it are stored together or not at all. Returns how many were added."""
    rows = [(e, u, b, c, c) for e, u, b, c in items]
    db.executemany(
        "INSERT INTO webhook_deliveries (event_id, url, body, created_at, next_at, attempts,"
        " state) VALUES (?, ?, ?, ?, ?, 0, 'pending')",
        rows,
    )
    return len(rows)


def purge(db: sqlite3.Connection, older_than: float) -> int:
    """Delete the delivered and given-up rows created before ``older_than`` (pending ones are
    always kept); returns how many. Runs in the caller's transaction if one is open."""
    cur = db.execute(
        "DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'gave_up') AND created_at < ?",
        (older_than,),
    )
    return cur.rowcount


def due(
    db: sqlite3.Connection, now: float, skip_urls: Sequence[str] = (), limit: int = 200
) -> list[Delivery]:
    """Pending rows due by ``now`` in id order, but those to ``skip_urls``."""
    skip = f" AND url NOT IN ({','.join('?' * len(skip_urls))})" if skip_urls else ""
    cur = db.execute(
        "SELECT id, event_id, url, body, created_at, attempts FROM webhook_deliveries"
        f" WHERE state = 'pending' AND next_at <= ?{skip} ORDER BY id LIMIT ?",
        (now, *skip_urls, limit),
    )
    return [Delivery(*row) for row in cur.fetchall()]


def next_due(db: sqlite3.Connection, skip_urls: Sequence[str] = ()) -> float | None:
    """When the earliest pending row is due (but those to ``skip_urls``), or None."""
    skip = f" AND url NOT IN ({','.join('?' * len(skip_urls))})" if skip_urls else ""
    row = db.execute(
        f"SELECT MIN(next_at) FROM webhook_deliveries WHERE state = 'pending'{skip}",
        tuple(skip_urls),
    ).fetchone()
    return None if row is None else row[0]


def mark_delivered(db: sqlite3.Connection, row_id: int, now: float) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,"
        " delivered_at = ?, last_error = NULL WHERE id = ? AND state = 'pending'",
        (now, row_id),
    )


def mark_retry(db: sqlite3.Connection, row_id: int, next_at: float, error: str) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = ?, last_error = ?"
        " WHERE id = ? AND state = 'pending'",
        (next_at, error, row_id),
    )


def mark_gave_up(db: sqlite3.Connection, row_id: int, error: str) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET state = 'gave_up', attempts = attempts + 1,"
        " last_error = ? WHERE id = ? AND state = 'pending'",
        (error, row_id),
    )
