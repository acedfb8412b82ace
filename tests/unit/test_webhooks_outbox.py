"""The outbox in a real SQLite file: deliveries stored in the caller's transaction (with the
change or not at all), due rows, purge; the backoff formula; the webhook options."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from dacirco.webhooks import OUTBOX_SCHEMA, WebhookOptions, enqueue, outbox, purge
from dacirco.webhooks.deliverer import backoff


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OUTBOX_SCHEMA)
    conn.executescript(OUTBOX_SCHEMA)  # idempotent
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT)")
    yield conn
    conn.close()


def _rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(
        "SELECT event_id, url, body, created_at, next_at, attempts, state, last_error,"
        " delivered_at FROM webhook_deliveries ORDER BY id"
    ).fetchall()


def test_enqueue_in_the_callers_transaction_committed(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    db.execute("INSERT INTO jobs VALUES ('j1', 'Completed')")
    n = enqueue(db, [("e1", "http://a/", '{"x": 1}', 100.0), ("e1", "http://b/", "{}", 100.0)])
    assert db.in_transaction  # enqueue neither began nor ended it
    db.execute("COMMIT")
    assert n == 2
    assert _rows(db) == [
        ("e1", "http://a/", '{"x": 1}', 100.0, 100.0, 0, "pending", None, None),
        ("e1", "http://b/", "{}", 100.0, 100.0, 0, "pending", None, None),
    ]


def test_enqueue_rolled_back_with_the_change(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    db.execute("INSERT INTO jobs VALUES ('j1', 'Completed')")
    enqueue(db, [("e1", "http://a/", "{}", 100.0)])
    db.execute("ROLLBACK")
    assert _rows(db) == []
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)


def test_enqueue_nothing_is_fine(db: sqlite3.Connection) -> None:
    assert enqueue(db, iter([])) == 0
    assert _rows(db) == []


def test_due_in_id_order_skipping_urls_and_future_rows(db: sqlite3.Connection) -> None:
    enqueue(db, [(f"e{i}", f"http://{'ab'[i % 2]}/", "{}", float(i)) for i in range(6)])
    outbox.mark_retry(db, 1, 50.0, "HTTP 500 Internal Server Error")
    assert [d.event_id for d in outbox.due(db, 10.0)] == ["e1", "e2", "e3", "e4", "e5"]
    assert [d.event_id for d in outbox.due(db, 10.0, ["http://a/"])] == ["e1", "e3", "e5"]
    assert [d.event_id for d in outbox.due(db, 10.0, limit=2)] == ["e1", "e2"]
    assert outbox.next_due(db) == 1.0
    assert outbox.next_due(db, ["http://b/"]) == 2.0
    first = outbox.due(db, 60.0)[0]
    assert (first.event_id, first.attempts) == ("e0", 1)


def test_marks_and_purge(db: sqlite3.Connection) -> None:
    enqueue(db, [("old-ok", "http://a/", "{}", 10.0), ("old-gone", "http://a/", "{}", 10.0)])
    enqueue(db, [("old-pending", "http://a/", "{}", 10.0), ("new-ok", "http://a/", "{}", 500.0)])
    outbox.mark_delivered(db, 1, 11.0)
    outbox.mark_gave_up(db, 2, "HTTP 500 Internal Server Error (gave up)")
    outbox.mark_delivered(db, 4, 501.0)
    outbox.mark_retry(db, 4, 900.0, "late")  # a row no longer pending is left alone
    assert purge(db, older_than=100.0) == 2
    rows = _rows(db)
    assert [(r[0], r[6]) for r in rows] == [("old-pending", "pending"), ("new-ok", "delivered")]
    assert rows[1][5] == 1 and rows[1][8] == 501.0 and rows[1][4] == 500.0


def test_backoff_full_jitter_bounds() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (11, 600.0)]:
        delays = [backoff(failures, 1.0, 600.0, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
    assert backoff(10_000, 1.0, 600.0, rng) <= 600.0  # no overflow


def test_options_defaults_and_url_check() -> None:
    options = WebhookOptions()
    assert (options.url, options.secret, options.allow_private) == (None, None, False)
    assert (options.give_up_after, options.progress_interval, options.timeout) == (
        86400.0,
        10.0,
        10.0,
    )
    assert WebhookOptions(url="HTTPS://Hooks.Example.com/x").url == "https://hooks.example.com/x"
    with pytest.raises(ValidationError) as info:
        WebhookOptions(url="http://127.0.0.1:9000/hook")
    assert info.value.errors()[0]["loc"] == ("url",)
    assert "loopback" in str(info.value)
    allowed = WebhookOptions(url="http://127.0.0.1:9000/hook", allow_private=True)
    assert allowed.url == "http://127.0.0.1:9000/hook"
    with pytest.raises(ValidationError, match="only http"):
        WebhookOptions(url="ftp://example.com/", allow_private=True)
    with pytest.raises(ValidationError):
        WebhookOptions(timeout=0)
    assert "hunter2" not in repr(WebhookOptions(secret="hunter2"))
    for name, field in WebhookOptions.model_fields.items():
        assert field.description, name
