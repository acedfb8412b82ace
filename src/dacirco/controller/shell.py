"""The controller's shell around the core: each step is computed, stored, then made real.

``step(stimulus)``, one at a time (a lock):

1. the core handles the stimulus on a ``Txn`` (nothing is written yet);
2. the transaction is sealed: memory is put back as before the step, its rows serialised;
3. SQLite and the event log get the step in one transaction (``Store.write``);
4. only then does the step take effect in memory, and its actions run: launch and stop
   workers (runtime), answer long-polls, delete objects (storage, in a thread).

A step that cannot be written leaves memory exactly as it was and raises ``NotStored``
(the API answers 503 with ``Retry-After``; a worker retries its report).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Coroutine
from itertools import islice
from typing import Any

from dacirco.controller.changes import Change, Hub, changes_of, deletions
from dacirco.controller.events import EventLog, event_record
from dacirco.controller.store import Rows, Store
from dacirco.controller.tally import Tally
from dacirco.controller.usage import Usage
from dacirco.core.effects import Action, Delete, Halt, Launch, Step, Wake
from dacirco.core.errors import NotStored
from dacirco.core.machine import Core
from dacirco.core.stimuli import Decide, Exited, Expire, Recover, Stimulus, Submitted, Tick
from dacirco.core.txn import Txn
from dacirco.domain import FINAL_JOB_STATES, ExitCause, Job
from dacirco.runtimes.base import CapacityRefused, Runtime, WorkerSpec
from dacirco.storage.base import Storage, StorageError, delete_output, output_key
from dacirco.webhooks import Deliverer

log = logging.getLogger(__name__)
# Finished jobs kept in memory, the newest (for the dashboard's first pages, Retry-After
# estimates and late reports); older ones are read from the store when asked.
KEEP_FINISHED = 1000


class Shell:
    def __init__(
        self,
        core: Core,
        runtime: Runtime,
        storage: Storage,
        store: Store,
        events: EventLog,
        clock: Callable[[], float],
        controller_url: str,
    ) -> None:
        self.core = core
        self.runtime = runtime
        self.storage = storage
        self.store = store
        self.events = events
        self.clock = clock
        self.controller_url = controller_url
        self.usage: Usage | None = None  # resource samples; set by the service
        self._lock = asyncio.Lock()
        self._tokens: dict[str, str] = {}  # token -> worker id
        self._wake: dict[str, asyncio.Event] = {}  # per worker: a task is there for you
        self._background: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self.closed = False
        self.hub = Hub()  # the changes, for the event streams
        self.tally = Tally()  # counts for /metrics, moved by the same changes
        self.webhook: str | None = None  # the service-wide webhook, if any
        self.deliverer: Deliverer | None = None  # sends the stored webhooks (the service's)
        self._progress_sent: dict[str, float] = {}  # job -> when its progress went out last
        self._admissions: list[tuple[Job, asyncio.Future[None]]] = []  # the next batch
        self.keep_finished = KEEP_FINISHED
        self._finished: dict[str, None] = {}  # finished jobs in memory, oldest first

    def kick(self) -> None:
        """Something happened: run the policy now rather than at the next tick."""
        self._kick.set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- one step ----------------------------------------------------------------------
    async def step(self, stimulus: Stimulus) -> Step:
        async with self._lock:
            out, changed = await self._commit(stimulus)
        await self._act(out.actions)
        if changed and not isinstance(stimulus, Decide | Tick | Expire):
            self.kick()  # something happened outside the loop: ask the policy now
        return out

    async def admit(self, job: Job) -> None:
        """``Submitted(job)``, stored before it returns. The submissions that arrive while a
        step is being stored are stored together in the next one, one transaction for them
        all (a group commit): under a flood of requests the service writes once per batch,
        not once per request."""
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._admissions.append((job, admitted))
        if len(self._admissions) == 1:  # the first of a batch: a writer for it
            self.spawn(self._admit_batch())
        await admitted

    async def _admit_batch(self) -> None:
        batch: list[tuple[Job, asyncio.Future[None]]] = []
        try:
            async with self._lock:
                batch, self._admissions = self._admissions, []
                out, _ = await self._commit(*(Submitted(job) for job, _ in batch))
        except BaseException as exc:
            if not batch:  # canceled before it took its batch: the batch fails with it
                batch, self._admissions = self._admissions, []
            for _, admitted in batch:
                if not admitted.done():
                    admitted.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for _, admitted in batch:
            if not admitted.done():
                admitted.set_result(None)
        await self._act(out.actions)
        self.kick()

    async def _commit(self, *stimuli: Stimulus) -> tuple[Step, bool]:
        state = self.core.state
        state.set_nodes(tuple(self.runtime.nodes()))
        txn = Txn()
        now = self.clock()
        try:
            out = Step()
            for stimulus in stimuli:  # one transaction, each stimulus a step of the core
                one = self.core.handle(stimulus, now, txn)
                out.emits += one.emits
                out.actions += one.actions
                out.refused += one.refused
                out.decisions = one.decisions or out.decisions
                out.forget = one.forget or out.forget
            if txn.empty and not out.emits:
                txn.commit()
                return out, False
            lines = [
                json.dumps(event_record(e.code, e.at, e.fields), default=str) for e in out.emits
            ]
            changed = list(txn.jobs.values())
            rows = Rows.of(changed, txn.workers.values(), txn.tasks.values())
            if (gone := out.forget) is not None:
                rows.dropped.update(
                    jobs=[j.id for j in gone.jobs],
                    tasks=[t.id for t in gone.tasks],
                    workers=[w.id for w in gone.workers],
                )
            loading = any(isinstance(stimulus, Recover) for stimulus in stimuli)
            changes = changes_of(txn, state, now, self.webhook, loading=loading)
            if gone is not None:
                changes += deletions(gone, now, self.webhook)
        except BaseException:
            txn.rollback()
            state.invalidate()
            raise
        txn.seal()  # until it is stored, nobody sees the step
        views = state.caches()  # the views as the step left them: right again once stored
        state.invalidate()
        try:
            seqs = await self.store.write(rows, lines, self.events, changes)
        except Exception as exc:
            log.error("a step could not be stored, nothing of it took effect: %s", exc)
            raise NotStored(f"the service could not store this change: {exc}") from exc
        txn.commit()
        state.restore_caches(views)
        if out.forget is not None:
            self.tally.forget(out.forget.jobs, out.forget.workers)
            for job in out.forget.jobs:
                self._progress_sent.pop(job.id, None)
        if changes:
            self._published(list(zip(seqs, changes, strict=True)))
        self._retire(changed)
        for why in out.refused:
            log.warning("refused %s", why)
        return out, True

    def _published(self, items: list[tuple[int, Change]]) -> None:
        """Stored changes reach the event streams and the counters; their stored webhooks
        go out."""
        self.hub.publish(items)
        st = self.core.state
        self.tally.apply((change for _, change in items), st.jobs, st.workers)
        if self.deliverer is not None and any(change.urls for _, change in items):
            self.deliverer.notify()

    def _retire(self, changed: list[Job]) -> None:
        """Finished jobs stay in memory while they are among the last ``keep_finished``;
        older ones leave it (the store has them: ``archive``), unless a live worker still
        holds one of their tasks (then they go at a later step)."""
        for job in changed:
            if job.state in FINAL_JOB_STATES:
                self._finished[job.id] = None
        excess = len(self._finished) - self.keep_finished
        if excess <= 0:
            return
        st = self.core.state
        held = {t for w in st.alive if (t := st.workers[w].task_id) is not None}
        for job_id in list(islice(self._finished, excess)):
            del self._finished[job_id]
            if not st.evict(job_id, held):
                self._finished[job_id] = None  # tried again later

    # ---- its actions -------------------------------------------------------------------
    async def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Wake):
                event = self._wake.get(action.worker_id)
                if event is not None:
                    event.set()
            elif isinstance(action, Halt):
                self._forget(action.worker_id)
                self.spawn(self.runtime.stop(action.worker_id))
            elif isinstance(action, Launch):
                await self._launch(action)
            elif isinstance(action, Delete):
                self.spawn(self._delete(action.names, action.files))

    def _forget(self, worker_id: str) -> None:
        for token, wid in list(self._tokens.items()):
            if wid == worker_id:
                del self._tokens[token]
        self._wake.pop(worker_id, None)
        if self.usage is not None:
            self.usage.forget(worker_id)

    async def _launch(self, launch: Launch) -> None:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = launch.worker_id
        self._wake[launch.worker_id] = asyncio.Event()
        spec = WorkerSpec(
            worker_id=launch.worker_id,
            name=launch.name,
            flavor=launch.flavor,
            controller_url=self.controller_url,
            token=token,
            node=launch.node,
        )
        try:
            await self.runtime.start(spec)
        except CapacityRefused as exc:
            # No room now: try again later; the jobs wait, no boot failure is counted.
            log.warning("no room for %s: %s", launch.name, exc)
            await self._exited(launch.worker_id, ExitCause.NO_CAPACITY, f"no room: {exc}")
        except Exception as exc:
            log.error("runtime could not start %s: %s", launch.name, exc)
            why = f"runtime could not start it: {exc}"
            await self._exited(launch.worker_id, ExitCause.CRASHED, why)

    async def _exited(self, worker_id: str, cause: ExitCause, reason: str) -> None:
        """Record an exit; one that cannot be stored now is tried again in the background
        until it is (a lost worker must never keep its job)."""
        try:
            await self.step(Exited(worker_id, cause, reason))
        except NotStored:
            self.spawn(self._exited_later(Exited(worker_id, cause, reason)))

    async def _exited_later(self, exited: Exited) -> None:
        delay = 0.5
        while not self.closed:
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
            with contextlib.suppress(NotStored):
                await self.step(exited)
                return

    async def _delete(self, names: tuple[str, ...], files: bool = False) -> None:
        """Objects no longer needed go, best effort, off the event loop (``files``: each name
        one object, never a streaming job's whole folder)."""
        for name in names:
            with contextlib.suppress(StorageError, OSError):
                if files:
                    await asyncio.to_thread(self.storage.delete, output_key(name))
                else:
                    await asyncio.to_thread(delete_output, self.storage, name)
