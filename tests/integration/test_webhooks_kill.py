"""At least once across a SIGKILL: a deliverer process killed while a receiver holds one of
its requests, then started again, delivers every stored event (the held one twice)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dacirco.webhooks import OUTBOX_SCHEMA
from tests.integration.test_webhooks_delivery import SECRET, Receiver, rows, store, until

# A deliverer in a process of its own, as the service runs it.
SCRIPT = """
import asyncio, sys
from pathlib import Path
from dacirco.webhooks import Deliverer

async def main() -> None:
    deliverer = Deliverer(
        Path(sys.argv[1]), sys.argv[2].encode(), allow_private=True, concurrency=1,
        timeout=30.0, backoff_base=0.1,
    )
    await deliverer.start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(OUTBOX_SCHEMA)
    return path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def start(db_path: Path, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(db_path), SECRET.decode()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started.append(proc)
    return proc


async def test_at_least_once_across_kill_9(db_path: Path, processes) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    try:
        events = [f"ev-{i}" for i in range(6)]
        store(db_path, [(e, receiver.url, f'{{"n": "{e}"}}') for e in events])
        receiver.hold_nth = 3  # the third request is held: the process dies during it
        first = start(db_path, processes)
        await until(lambda: len(receiver.received) >= 3, "the held request", timeout=30)
        assert receiver.ids() == events[:3]
        os.kill(first.pid, signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
        receiver.release.set()  # its answer goes to a dead process

        states = [r["state"] for r in rows(db_path)]
        assert states[:2] == ["delivered", "delivered"]
        assert states[2:] == ["pending"] * 4  # the held one was in flight: still pending

        second = start(db_path, processes)
        await until(
            lambda: all(r["state"] == "delivered" for r in rows(db_path)),
            "every row delivered after the restart",
            timeout=30,
        )
        assert second.poll() is None, second.stderr.read() if second.stderr else ""
    finally:
        receiver.close()
    got = receiver.ids()
    assert set(got) == set(events)  # every event at least once
    assert got.count("ev-2") == 2  # the one in flight at the kill, again
    assert sorted(got, key=events.index) == got  # one URL, one process at a time: in order
