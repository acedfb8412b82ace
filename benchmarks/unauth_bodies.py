"""What unauthenticated bodies cost the service: its RSS while N clients each send a large
``POST /jobs`` body without a token (20 bodies of 150 MiB by default).

A real `dacirco serve` with a client token (``DACIRCO_API_TOKENS``) is started on a free port
from the ``dacirco`` that ``PYTHONPATH`` names, so the same script measures two versions:

    PYTHONPATH=src .venv/bin/python benchmarks/unauth_bodies.py
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/unauth_bodies.py

``--with-token`` sends the right token: the body size cap alone is then measured.

The service's RSS is sampled every 20 ms; it is killed if it passes ``--rss-limit-mb`` (the
figure then reads "over the limit"), so that a version that buffers bodies cannot exhaust
the machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from harness import free_port, healthy

MIB = 1 << 20
TOKEN = "bench-token-0123456789abcdef"


def body(size: int) -> Iterator[bytes]:
    """A valid JSON job whose ``id_video`` is ``size`` bytes long, streamed 1 MiB at a time."""
    head, tail = b'{"id_video": "', b'", "bitrate": 1000, "speed": "ultrafast"}'
    left = size - len(head) - len(tail)
    block = b"a" * MIB
    yield head
    while left > 0:
        yield block[: min(MIB, left)]
        left -= MIB
    yield tail


def send(url: str, size: int, token: str | None) -> str:
    """One POST (unauthenticated unless ``token``); its status, or what ended it (the service
    may answer and close before the body is sent)."""
    headers = {"Content-Type": "application/json", "Content-Length": str(size)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(timeout=120) as client:
            resp = client.post(f"{url}/jobs", content=body(size), headers=headers)
        return str(resp.status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


class Sampler(threading.Thread):
    """The peak RSS of ``pid``; kills it past ``limit`` bytes."""

    def __init__(self, pid: int, limit: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.limit = limit
        self.peak = 0
        self.killed = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                rss = self.proc.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.killed = True
                self.proc.kill()
                return
            time.sleep(0.02)


def start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DACIRCO_API_TOKENS": TOKEN}
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve", "--port", str(port),
        "--data-dir", str(tmp / "data"), "--event-log-file", str(tmp / "tc-events-01.txt"),
        "--log-level", "warning",
    ]  # fmt: skip
    return healthy(subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL), port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mib", type=int, default=150, help="each body's size, MiB")
    parser.add_argument("--rss-limit-mb", type=int, default=12_000)
    parser.add_argument(
        "--with-token", action="store_true", help="send the right token: the size cap alone"
    )
    args = parser.parse_args()
    import dacirco

    print(f"dacirco from {Path(dacirco.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="dacirco-bench-") as folder:
        tmp, port = Path(folder), free_port()
        proc = start(tmp, port)
        try:
            time.sleep(1.0)
            idle = psutil.Process(proc.pid).memory_info().rss
            sampler = Sampler(proc.pid, args.rss_limit_mb * MIB)
            sampler.start()
            began = time.perf_counter()
            url, size = f"http://127.0.0.1:{port}", args.mib * MIB
            with ThreadPoolExecutor(args.clients) as pool:
                token = TOKEN if args.with_token else None
                answers = list(pool.map(lambda _: send(url, size, token), range(args.clients)))
            elapsed = time.perf_counter() - began
            time.sleep(0.5)
            sampler.done.set()
            sampler.join()
            after = psutil.Process(proc.pid).memory_info().rss if proc.poll() is None else 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    counts = ", ".join(f"{n} x {a}" for a, n in collections.Counter(answers).most_common())
    who = "authenticated" if args.with_token else "unauthenticated"
    print(f"{args.clients} concurrent {who} POST /jobs of {args.mib} MiB: {counts}")
    print(f"wall time: {elapsed:.1f} s")
    print(f"service RSS idle: {idle / MIB:.0f} MiB")
    peak = f"{sampler.peak / MIB:.0f} MiB"
    if sampler.killed:
        peak = f"over the limit ({args.rss_limit_mb} MiB): the service was killed"
    print(f"service RSS peak during the bodies: {peak}")
    print(f"service RSS after: {after / MIB:.0f} MiB")


if __name__ == "__main__":
    main()
