"""The node agent: offers this machine's idle cycles to a controller and runs its pilots.

Two loops. The *watch* samples the owner's load (``load.py``) every ``sample_interval``; the
load is the mean of the last ``window`` seconds. Once it has stayed above the threshold for
``preempt_after`` seconds, every pilot is stopped (SIGTERM: ffmpeg is killed, the task left)
and reported *preempted*: the controller requeues its task without counting an attempt. A
pilot past its time to live goes the same way. The *heartbeat* tells the controller, every
``interval`` (at once after an exit), what the machine offers (nothing while the owner's load
is above the threshold, or has not been below it for ``preempt_after`` seconds) and what
ended; the answer names the pilots to start (real ``dacirco worker`` processes, through the
local runtime) and to stop. A refused token or an unreachable controller is one line in the
log, and the heartbeat is tried again with backoff (stamina); the pilots are stopped if the
controller stays away longer than it waits before declaring the node lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import httpx
import stamina

from dacirco.domain import Flavor
from dacirco.nodeagent.load import LoadMeter
from dacirco.nodeagent.protocol import AGENT_TIMEOUT, AgentBeat, AgentOrders, PilotExit
from dacirco.runtimes.base import WorkerExit, WorkerSpec
from dacirco.runtimes.local import LocalRuntime

log = logging.getLogger("dacirco.nodeagent")

TELL_FIRST = 3.0  # seconds a preemption waits for the controller to hear of it


@dataclass(frozen=True)
class AgentOptions:
    controller: str
    token: str | None
    node: str
    memory_gb: float
    max_owner_load: float  # cores (above the baseline when one is measured)
    cpus: int | None = None  # cores offered; None: the machine's, less the owner's load
    baseline: float = 0.0  # seconds the owner's load is measured at start (0: no baseline)
    preempt_after: float = 3.0
    pilot_ttl: float = 3600.0
    pilot_idle: float = 60.0
    interval: float = 1.0
    sample_interval: float = 0.5
    window: float = 2.0
    work_dir: Path | None = None
    log_dir: Path | None = None


class CallFailed(Exception):
    """A heartbeat that did not get its answer (retried with backoff)."""


class NodeAgent:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        extra = ("--idle-exit", f"{options.pilot_idle:g}") if options.pilot_idle > 0 else ()
        self.runtime = LocalRuntime(
            log_dir=options.log_dir, work_root=options.work_dir, stop_grace=5.0, extra_args=extra
        )
        self.runtime.set_exit_handler(self._exited)
        self.meter = LoadMeter(self._pids)
        self.threshold = options.max_owner_load
        self.load = 0.0
        self.pilots: dict[str, float] = {}  # pilot id -> when it started (monotonic)
        self.exits: list[PilotExit] = []
        self._samples: deque[tuple[float, float]] = deque()
        self._above_since: float | None = None
        self._below_since: float | None = time.monotonic()
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_ok = time.monotonic()
        self._problem = ""

    def _pids(self) -> list[int]:
        return [pid for w in self.pilots if (pid := self.runtime.pid(w)) is not None]

    # ---- the owner's load ----------------------------------------------------------------
    def _sample(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self.meter.sample()))
        while self._samples and self._samples[0][0] < now - self.options.window:
            self._samples.popleft()
        self.load = statistics.fmean(x for _, x in self._samples)
        if self.load > self.threshold:
            self._below_since = None
            self._above_since = self._above_since or now
        else:
            self._above_since = None
            self._below_since = self._below_since or now

    def offer(self) -> int:
        """Cores offered to pilots now: none while the owner needs the machine."""
        now, calm = time.monotonic(), self.options.preempt_after
        if self._below_since is None or now - self._below_since < calm:
            return 0
        if self.options.cpus is not None:
            return self.options.cpus
        return max(0, math.floor(self.meter.cores - min(self.load, self.meter.cores)))

    async def measure_baseline(self) -> None:
        """The owner's usual load, measured before any pilot runs: the threshold is then
        that much above it."""
        end = time.monotonic() + self.options.baseline
        loads = []
        while time.monotonic() < end:
            await asyncio.sleep(self.options.sample_interval)
            loads.append(self.meter.sample())
        base = statistics.median(loads) if loads else 0.0
        self.threshold = base + self.options.max_owner_load
        log.info("owner's load %.1f cores at rest: pilots stop above %.1f", base, self.threshold)

    async def watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.sample_interval)
            self._sample()
            now = time.monotonic()
            if self._above_since is not None and self.pilots:
                held = now - self._above_since
                if held >= self.options.preempt_after:
                    why = (
                        f"owner's load {self.load:.1f} cores above {self.threshold:.1f} "
                        f"for {held:.1f} s"
                    )
                    await self.preempt(list(self.pilots), why)
            ttl = self.options.pilot_ttl
            old = [w for w, t in self.pilots.items() if now - t >= ttl]
            if old:
                await self.preempt(old, f"time to live ({ttl:g} s) reached")

    async def preempt(self, pilots: list[str], reason: str, tell: float = TELL_FIRST) -> None:
        """Report ``pilots`` preempted, then stop them. Told first (for ``tell`` seconds at
        most), the controller requeues their tasks without an attempt and refuses what the
        pilots say after (a task they failed as they were stopped counts nothing)."""
        log.warning("preempting %d pilot(s): %s", len(pilots), reason)
        told = [PilotExit(worker_id=w, cause="preempted", reason=reason) for w in pilots]
        for worker_id in pilots:
            self.pilots.pop(worker_id, None)
        self.exits += told
        self._wake.set()
        end = time.monotonic() + tell
        while time.monotonic() < end and any(e in self.exits for e in told):
            await asyncio.sleep(0.02)
        await asyncio.gather(*(self.runtime.stop(w) for w in pilots))

    async def _exited(self, exit: WorkerExit) -> None:
        """A pilot ended on its own: idle (code 0), or it crashed."""
        if self.pilots.pop(exit.worker_id, None) is None:
            return
        cause = "exited" if exit.code == 0 else "crashed"
        self.exits.append(PilotExit(worker_id=exit.worker_id, cause=cause, reason=exit.reason))
        self._wake.set()

    # ---- the controller ------------------------------------------------------------------
    async def heartbeats(self, client: httpx.AsyncClient) -> None:
        while not self._stopping:
            async for attempt in stamina.retry_context(
                on=CallFailed, attempts=None, timeout=None, wait_initial=0.5, wait_max=30.0
            ):
                with attempt:
                    await self._beat(client)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.interval)

    async def _beat(self, client: httpx.AsyncClient) -> None:
        if self._stopping:
            return
        exits = list(self.exits)
        beat = AgentBeat(
            node=self.options.node,
            cpus=self.offer(),
            memory_gb=self.options.memory_gb,
            owner_load=round(self.load, 2),
            running=list(self.pilots),
            exits=exits,
        )
        try:
            resp = await client.post("/agents/heartbeat", json=beat.model_dump())
        except httpx.TransportError as exc:
            await self._failed(f"cannot reach the controller at {self.options.controller}: {exc}")
            raise CallFailed from None
        if resp.status_code != 200:
            await self._failed(_refusal(resp))
            raise CallFailed
        orders = AgentOrders.model_validate(resp.json())
        del self.exits[: len(exits)]  # told
        if self._problem:
            log.info("the controller answers again")
        self._problem, self._last_ok = "", time.monotonic()
        await self._obey(orders)

    async def _failed(self, problem: str) -> None:
        if problem != self._problem:
            log.error("%s; retrying with backoff", problem)
            self._problem = problem
        away = time.monotonic() - self._last_ok
        if self.pilots and away > AGENT_TIMEOUT:
            # The controller has declared this node lost: its pilots' work waits elsewhere.
            why = f"controller away for {away:.0f} s"
            await self.preempt(list(self.pilots), why, tell=0.0)

    async def _obey(self, orders: AgentOrders) -> None:
        for worker_id in orders.stop:
            if self.pilots.pop(worker_id, None) is not None:
                await self.runtime.stop(worker_id)
        for order in orders.start:
            if self.offer() == 0:  # the owner came back since the offer
                why = f"owner's load {self.load:.1f} cores: no room for pilots now"
                self.exits.append(
                    PilotExit(worker_id=order.worker_id, cause="preempted", reason=why)
                )
                self._wake.set()
                continue
            spec = WorkerSpec(
                worker_id=order.worker_id,
                name=order.name,
                flavor=Flavor("pilot", order.cpus, order.memory_gb),
                controller_url=order.controller_url,
                token=order.token,
                node=self.options.node,
            )
            try:
                await self.runtime.start(spec)
            except Exception as exc:
                reason = f"cannot start the pilot: {exc}"
                self.exits.append(
                    PilotExit(worker_id=order.worker_id, cause="crashed", reason=reason)
                )
                self._wake.set()
                continue
            self.pilots[order.worker_id] = time.monotonic()
            log.info("pilot %s started", order.name)

    # ---- the whole ------------------------------------------------------------------------
    async def run(self) -> int:
        """Until cancelled (SIGTERM, Ctrl-C): then every pilot stops, reported preempted."""
        if self.options.baseline > 0:
            await self.measure_baseline()
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token else {}
        async with httpx.AsyncClient(
            base_url=self.options.controller.rstrip("/"), headers=headers, timeout=10.0
        ) as client:
            tasks = [
                asyncio.create_task(self.watch()),
                asyncio.create_task(self.heartbeats(client)),
            ]
            try:
                await asyncio.gather(*tasks)
            except asyncio.CancelledError:
                pass
            finally:
                self._stopping = True
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.close(client)
        return 0

    async def close(self, client: httpx.AsyncClient) -> None:
        if self.pilots:
            await self.preempt(list(self.pilots), "node agent stopped", tell=0.0)
            with contextlib.suppress(Exception):  # best effort: else the node is lost
                beat = AgentBeat(
                    node=self.options.node, cpus=0, memory_gb=0.0, exits=list(self.exits)
                )
                await client.post("/agents/heartbeat", json=beat.model_dump(), timeout=3.0)
        await self.runtime.close()


def _refusal(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail", "")
    except ValueError:
        detail = resp.text[:200]
    if resp.status_code in (401, 403):
        return f"the controller refused this agent's token ({resp.status_code}: {detail})"
    return f"the controller answered {resp.status_code}: {detail}"
