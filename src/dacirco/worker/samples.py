"""The worker's resource samples: a sampler thread (its node, its own process tree with
ffmpeg) and a task that sends them to the controller every few seconds."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import httpx

from dacirco.protocol import MAX_SAMPLES, SamplesReport
from dacirco.sampling import NodeProbe, Sampler, own_tree

log = logging.getLogger("dacirco.worker")

PUSH_EVERY = 5.0  # seconds between two POST /worker/samples


class SamplePusher:
    """Samples every ``interval`` seconds; sends what it has every ``PUSH_EVERY`` seconds.

    Samples that cannot be sent are kept up to ``MAX_SAMPLES`` (the oldest go first), so a
    controller that does not answer for a while costs memory only up to that bound.
    """

    def __init__(self, client: httpx.AsyncClient, worker_id: str, interval: float) -> None:
        self.client, self.interval = client, interval
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_SAMPLES)
        self._sampler = Sampler(
            [NodeProbe(), own_tree("worker", worker_id)], self._buffer.extend, interval
        )
        self._task: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sampler.start()
        self._task = asyncio.create_task(self._push_forever(), name="dacirco-samples")

    async def _push_forever(self) -> None:
        while True:
            await asyncio.sleep(max(PUSH_EVERY, self.interval))
            await self.push()

    def flush_soon(self) -> None:
        """Send what there is now, without waiting for the caller."""
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self.push())

    async def push(self) -> None:
        batch = [self._buffer.popleft() for _ in range(len(self._buffer))]
        if not batch:
            return
        try:
            body = SamplesReport.model_validate({"samples": batch})
            resp = await self.client.post("/worker/samples", json=body.model_dump())
            if resp.status_code >= 400:
                log.debug("samples refused (%d); dropped", resp.status_code)
        except httpx.TransportError as exc:
            log.debug("samples not sent (%s); kept for the next try", exc)
            kept = [*batch, *self._buffer][-MAX_SAMPLES:]  # the oldest go first
            self._buffer.clear()
            self._buffer.extend(kept)
        except ValueError as exc:  # a sample out of the protocol's bounds: not worth a retry
            log.warning("samples dropped: %s", exc)

    @property
    def cost(self) -> float:
        return self._sampler.cost

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sampler.stop()
        with contextlib.suppress(httpx.HTTPError, TimeoutError):
            await asyncio.wait_for(self.push(), 2.0)  # the last seconds, if the controller is up
