"""An open-loop HTTP load generator for `POST /jobs`: requests go out at a fixed rate whatever
the answers, over a pool of keep-alive connections, and each latency counts from when its
request was due (a slow answer delays the ones queued behind it, and that shows), as wrk2
does. Plain asyncio streams, not an HTTP library: the generator shares the machine with the
service and must cost it as little as possible.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000 --rate 1000 --seconds 60
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console

console = Console()


@dataclass
class Result:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of every answer
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)  # job ids of the 201s
    retry_after_missing: int = 0  # 429s without Retry-After
    errors: int = 0  # connections that broke
    seconds: float = 0.0

    def quantile(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def run(
    url: str,
    rate: float,
    seconds: float,
    connections: int,
    body: dict[str, object],
    token: str | None = None,
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    request = (
        b"POST /jobs HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )  # fmt: skip
    due: asyncio.Queue[float | None] = asyncio.Queue()
    result = Result()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (at := await due.get()) is not None:
                try:
                    writer.write(request)
                    await writer.drain()
                    status, headers, answer = await _read_answer(reader)
                except (ConnectionError, asyncio.IncompleteReadError, OSError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                result.latencies.append(time.perf_counter() - at)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 201:
                    result.accepted.append(json.loads(answer))
                elif status == 429 and "retry-after" not in headers:
                    result.retry_after_missing += 1
        finally:
            writer.close()

    pool = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(at)
        result.sent += 1
    for _ in pool:
        due.put_nowait(None)
    await asyncio.gather(*pool)
    result.seconds = time.perf_counter() - start
    return result


def main(
    url: Annotated[str, typer.Option(help="the service")] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(min=1, help="requests per second")] = 1000,
    seconds: Annotated[float, typer.Option(min=1, help="how long")] = 60,
    connections: Annotated[int, typer.Option(min=1, help="keep-alive connections")] = 32,
    movie: Annotated[str, typer.Option(help="the movie asked for")] = "bbb_0.mp4",
) -> None:
    """Send POST /jobs at a fixed rate and print the latencies and answers."""
    body = {"id_video": movie, "bitrate": 800, "speed": "ultrafast", "reuse": False}
    r = asyncio.run(run(url, rate, seconds, connections, body))
    console.print(
        f"{r.sent} sent in {r.seconds:.1f} s ({len(r.latencies) / r.seconds:.0f}/s answered); "
        f"p50 {1000 * r.quantile(0.5):.1f} ms, p99 {1000 * r.quantile(0.99):.1f} ms; "
        f"answers {r.statuses}; broken connections {r.errors}"
    )


if __name__ == "__main__":
    typer.run(main)
