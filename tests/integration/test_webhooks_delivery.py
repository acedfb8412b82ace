"""The deliverer against real HTTP receivers on 127.0.0.1 and a real SQLite outbox: signed
deliveries, retries until a receiver comes up, giving up on a 500, a hanging receiver that
delays no one else, the checked address connected to, and best-effort progress."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dacirco.webhooks import OUTBOX_SCHEMA, Deliverer, enqueue, verify

SECRET = b"test-webhook-secret"


@dataclass
class Received:
    event_id: str
    body: bytes
    headers: dict[str, str]
    path: str
    at: float


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it receives and answers ``status``;
    while ``hang`` is set (or for its ``hold_nth`` request, counting from 1) it holds the
    request until released."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.status = status
        self.hang = False
        self.hold_nth = 0
        self.received: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            self.headers.get("DaCirco-Event-Id", ""),
                            body,
                            {k.lower(): v for k, v in self.headers.items()},
                            self.path,
                            time.time(),
                        )
                    )
                    held = receiver.hang or len(receiver.received) == receiver.hold_nth
                if held:
                    receiver.release.wait(30)
                with contextlib.suppress(OSError):
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def ids(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(port: int = 0, status: int = 200) -> Receiver:
        made.append(Receiver(port, status))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(OUTBOX_SCHEMA)
    return path


def store(db_path: Path, items: list[tuple[str, str, str]], created_at: float | None = None):  # type: ignore[no-untyped-def]
    """Enqueue (event_id, url, body) in one transaction, as the controller's step does."""
    now = time.time() if created_at is None else created_at
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as db:
        db.execute("BEGIN")
        enqueue(db, [(e, u, b, now) for e, u, b in items])
        db.execute("COMMIT")


def rows(db_path: Path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM webhook_deliveries ORDER BY id")]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(db_path: Path, **kwargs: object) -> AsyncIterator[Deliverer]:
    kwargs.setdefault("allow_private", True)
    deliverer = Deliverer(db_path, SECRET, **kwargs)  # type: ignore[arg-type]
    await deliverer.start()
    try:
        yield deliverer
    finally:
        await deliverer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_delivered_signed_in_order(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    r = receivers()
    bodies = {f"ev-{i}": json.dumps({"seq": i, "state": "Completed"}) for i in range(5)}
    store(db_path, [(e, r.url, b) for e, b in list(bodies.items())[:3]])
    async with running(db_path) as deliverer:
        await until(lambda: len(r.received) == 3, "the first three delivered")
        # Stored later, in a transaction of their own, then notified.
        store(db_path, [(e, r.url, b) for e, b in list(bodies.items())[3:]])
        deliverer.notify()
        await until(lambda: all(x["state"] == "delivered" for x in rows(db_path)), "all")
        await until(lambda: len(r.received) == 5, "five received")
    assert r.ids() == list(bodies)  # one URL: one at a time, in order
    for got in r.received:
        assert got.body == bodies[got.event_id].encode()
        assert got.path == "/hook"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["host"] == f"127.0.0.1:{r.port}"
        assert verify(SECRET, got.body, got.headers["dacirco-signature"], time.time())
        assert not verify(b"wrong", got.body, got.headers["dacirco-signature"], time.time())
    for row in rows(db_path):
        assert (row["attempts"], row["last_error"]) == (1, None)
        assert row["delivered_at"] >= row["created_at"]


async def test_receiver_down_then_up(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store(db_path, [("ev-down", url, '{"n": 1}')])
    async with running(db_path, backoff_base=0.1, backoff_cap=0.5):
        await until(lambda: rows(db_path)[0]["attempts"] >= 2, "two failed attempts")
        row = rows(db_path)[0]
        assert (row["state"], row["last_error"]) == ("pending", "connection refused")
        r = receivers(port=port)
        await until(lambda: rows(db_path)[0]["state"] == "delivered", "delivered once up")
    row = rows(db_path)[0]
    assert row["attempts"] > 2
    assert row["last_error"] is None
    assert r.ids() == ["ev-down"]


async def test_a_500_until_given_up(db_path: Path, receivers, caplog) -> None:  # type: ignore[no-untyped-def]
    r = receivers(status=500)
    secret_url = f"{r.url}/services/T0/B0/s3cr3tPathToken?key=abc"  # the receiver takes any path
    store(db_path, [("ev-500", secret_url, "{}")])
    with caplog.at_level(logging.WARNING, logger="dacirco.webhooks.deliverer"):
        async with running(db_path, give_up_after=2.0, backoff_base=0.2):
            await until(lambda: rows(db_path)[0]["state"] == "gave_up", "given up")
    # The log names the receiver's host, never the secret in its path or query.
    (line,) = [m for m in caplog.messages if "ev-500" in m]
    assert f"127.0.0.1:{r.port}/… #" in line and "s3cr3t" not in line and "key=" not in line
    row = rows(db_path)[0]
    assert row["attempts"] > 1
    assert row["attempts"] == len(r.received)
    assert row["last_error"].startswith("HTTP 500 Internal Server Error (gave up after")
    assert row["delivered_at"] is None


async def test_redirects_and_4xx_are_failures(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    moved, gone = receivers(status=302), receivers(status=410)
    store(db_path, [("ev-302", moved.url, "{}"), ("ev-410", gone.url, "{}")])
    async with running(db_path, backoff_base=30.0):
        await until(lambda: all(x["attempts"] == 1 for x in rows(db_path)), "one attempt each")
    errors = [(x["state"], x["last_error"]) for x in rows(db_path)]
    assert errors == [
        ("pending", "HTTP 302 Found (redirects are not followed)"),
        ("pending", "HTTP 410 Gone"),
    ]


async def test_a_hanging_receiver_delays_no_other(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    stuck, good = receivers(), receivers()
    stuck.hang = True
    store(db_path, [("stuck-1", stuck.url, "{}"), ("stuck-2", stuck.url, "{}")])
    store(db_path, [(f"good-{i}", good.url, "{}") for i in range(3)])
    async with running(db_path, timeout=4.0, backoff_base=30.0):
        await until(lambda: len(good.received) == 3, "the good receiver's three")
        # The hung request is still under way: its row has no attempt counted yet.
        assert stuck.ids() == ["stuck-1"]
        assert rows(db_path)[0]["attempts"] == 0
        await until(lambda: rows(db_path)[0]["attempts"] == 1, "the hung attempt timed out")
        assert rows(db_path)[0]["last_error"] == "timed out after 4 s"
    assert [x["state"] for x in rows(db_path)[2:]] == ["delivered"] * 3


async def test_connects_to_the_checked_address_with_the_urls_host(
    db_path: Path,
    receivers,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name is resolved once per attempt, by the deliverer, and the request goes to that
    address: `hooks.test` exists in no DNS, only in this resolver."""
    r = receivers()
    resolved: list[str] = []
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, **_kwargs):  # type: ignore[no-untyped-def]
        resolved.append(host)
        assert host == "hooks.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    url = f"http://hooks.test:{r.port}/hook"
    store(db_path, [("ev-name", url, "{}")])
    async with running(db_path):
        await until(lambda: rows(db_path)[0]["state"] == "delivered", "delivered")
    assert resolved == ["hooks.test"]
    assert r.received[0].headers["host"] == f"hooks.test:{r.port}"


async def test_private_address_refused_at_delivery(
    db_path: Path,
    receivers,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that resolves to this machine (DNS rebinding) gets nothing."""
    r = receivers()
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, **_kwargs):  # type: ignore[no-untyped-def]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    store(db_path, [("ev-rebind", f"http://rebind.test:{r.port}/hook", "{}")])
    async with running(db_path, allow_private=False, backoff_base=30.0):
        await until(lambda: rows(db_path)[0]["attempts"] == 1, "one attempt")
    row = rows(db_path)[0]
    assert row["state"] == "pending"
    assert "rebind.test resolves to 127.0.0.1" in row["last_error"]
    assert r.received == []


async def test_progress_is_sent_once_and_not_stored(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    r, down = receivers(), f"http://127.0.0.1:{free_port()}/hook"
    async with running(db_path) as deliverer:
        deliverer.progress("job-1:progress:1", r.url, '{"progress": 0.5}')
        deliverer.progress("job-1:progress:2", down, '{"progress": 0.5}')  # lost, and that's fine
        await until(lambda: len(r.received) == 1, "progress delivered")
        await asyncio.sleep(0.3)
    got = r.received[0]
    assert (got.event_id, got.body) == ("job-1:progress:1", b'{"progress": 0.5}')
    assert verify(SECRET, got.body, got.headers["dacirco-signature"], time.time())
    assert rows(db_path) == []
    assert len(r.received) == 1


async def test_an_old_pending_row_gets_one_last_attempt(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    """A row past give_up_after when the service starts (it was down) is still tried once:
    delivered if the receiver answers, given up otherwise."""
    ok, failing = receivers(), receivers(status=503)
    long_ago = time.time() - 2 * 86400
    store(db_path, [("old-ok", ok.url, "{}"), ("old-503", failing.url, "{}")], long_ago)
    async with running(db_path):
        await until(lambda: all(x["state"] != "pending" for x in rows(db_path)), "settled")
    assert [(x["state"], x["attempts"]) for x in rows(db_path)] == [
        ("delivered", 1),
        ("gave_up", 1),
    ]
    assert rows(db_path)[1]["last_error"].startswith("HTTP 503 Service Unavailable")


async def test_a_database_refusing_writes_slows_redelivery_down(db_path: Path, receivers) -> None:  # type: ignore[no-untyped-def]
    """A delivery whose outcome cannot be stored stays pending and is sent again (at least
    once), after a pause rather than in a loop; once writes work again it is marked."""
    r = receivers()
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON webhook_deliveries"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    store(db_path, [("ev-full", r.url, "{}")])
    async with running(db_path):
        await until(lambda: len(r.received) >= 1, "a first delivery")
        await asyncio.sleep(1.0)
        assert len(r.received) <= 2  # paused between tries: no flood
        assert rows(db_path)[0]["state"] == "pending"
        with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as db:
            db.execute("DROP TRIGGER refuse")
        await until(lambda: rows(db_path)[0]["state"] == "delivered", "marked once writable")
    assert set(r.ids()) == {"ev-full"}
