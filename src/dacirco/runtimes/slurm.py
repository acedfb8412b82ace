"""SLURM runtime (``--runtime slurm``): each worker is a SLURM batch job that runs
``python -m dacirco.worker`` on the node SLURM allocated.

- ``sbatch --wrap`` with the flavor as ``--cpus-per-task`` and ``--mem``, ``--nodelist`` the
  node the controller chose, ``--time`` the worker's time to live (``--slurm-time-limit``),
  ``--partition`` and ``--account`` if given, ``--no-requeue`` (a lost worker's job is the
  controller's to requeue). The token goes by the environment sbatch hands to the job
  (``--export=ALL``, from ``worker_env``), never on a command line or in the job's script.
- Nodes and their capacity come from ``sinfo`` (the partition's responding nodes, neither
  down nor drained), read at start and every ``refresh_interval`` seconds.
- One background task polls ``squeue`` for this runtime's jobs (asyncio subprocesses: the
  event loop never waits on SLURM). A job that ends unasked goes to the exit handler
  (``ExitCause.CRASHED``, or ``PREEMPTED`` when SLURM preempted it, with its state, exit
  code and the last lines of its log). A job pending longer than ``pending_limit`` (no room:
  other users' jobs, a flavor larger than the node) is cancelled and reported as
  ``ExitCause.NO_CAPACITY``: its jobs wait and the controller tries again later; it is never
  counted against them.
- A refused ``sbatch`` is one line with sbatch's own reason: ``CapacityRefused`` for a limit or
  an outage that passes (a QOS or association limit, a drained partition, the controller
  away: the jobs wait), ``RuntimeError_`` otherwise (an unknown partition or account).
- ``stop`` is ``scancel`` (SIGTERM, then SIGKILL after the cluster's KillWait) and waits for
  the job to leave the node; ``close`` cancels every job this runtime submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dacirco.domain import ExitCause, Node
from dacirco.runtimes.base import (
    CapacityRefused,
    ExitHandler,
    RuntimeError_,
    WorkerExit,
    WorkerSpec,
    worker_command,
    worker_env,
)
from dacirco.runtimes.factory import RuntimeUnavailable
from dacirco.runtimes.local import log_tail, worker_log
from dacirco.runtimes.slurm_tools import (
    ENDED,
    SINFO_FORMAT,
    SQUEUE_FORMAT,
    WAITING,
    Partition,
    exit_code,
    parse_job_id,
    parse_sinfo,
    parse_squeue,
    refused_for_now,
    sbatch_error,
    time_limit,
)

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0  # seconds any SLURM command may take before it counts as failed
_GONE = re.compile(r"Invalid job id|already completing or completed", re.IGNORECASE)


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None  # None: the cluster's default partition
    account: str | None = None
    time_limit: float | None = None  # seconds; None: the partition's default


@dataclass
class _Job:
    job_id: str
    log: Path | None  # the worker's output
    log_start: int  # the log's size at submission: what this job wrote comes after
    pending_since: float | None = None


class SlurmCommandError(Exception):
    """A SLURM command failed (its stderr on one line)."""


async def _run(*args: str, env: dict[str, str] | None) -> str:
    """A SLURM command's stdout (an asyncio subprocess); SlurmCommandError on failure."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except OSError as exc:
        raise SlurmCommandError(f"{args[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise SlurmCommandError(f"{args[0]} did not answer within {COMMAND_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise SlurmCommandError(err.decode("utf-8", "replace"))
    return out.decode("utf-8", "replace")


async def _queue(env: dict[str, str] | None) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) of this user's jobs, finished ones included (not ``--jobs``:
    one id SLURM has forgotten fails the whole call)."""
    args = ("squeue", "--noheader", "--me", "--states=all", f"--format={SQUEUE_FORMAT}")
    return parse_squeue(await _run(*args, env=env))


def read_partition(partition: str | None, env: dict[str, str] | None = None) -> Partition:
    """The partition (given, else the cluster's default) and its usable nodes, from ``sinfo``
    (blocking: called once, before the service's event loop runs)."""
    where = f"--slurm-partition {partition}" if partition else "--runtime slurm"
    try:
        done = subprocess.run(
            ["sinfo", "--noheader", "--Node", f"--format={SINFO_FORMAT}"],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"{where}: cannot run sinfo ({exc})") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        why = (lines[-1] if lines else f"exit code {done.returncode}")[:300]  # its conclusion
        raise RuntimeUnavailable(f"{where}: the SLURM cluster does not answer: {why}")
    partitions = parse_sinfo(done.stdout)
    known = ", ".join(sorted(partitions)) or "none"
    if partition is None:
        found = next((p for p in partitions.values() if p.default), None)
        if found is None:
            raise RuntimeUnavailable(
                f"{where}: the cluster has no default partition: give --slurm-partition "
                f"(partitions: {known})"
            )
    elif (found := partitions.get(partition)) is None:
        raise RuntimeUnavailable(f"{where}: no such partition (partitions: {known})")
    if not found.nodes:
        raise RuntimeUnavailable(f"{where}: partition {found.name} has no node up")
    return found


class SlurmRuntime:
    """Workers as SLURM batch jobs on the cluster ``sinfo`` and ``sbatch`` reach (``SLURM_CONF``
    or the machine's configuration)."""

    name = "slurm"

    def __init__(
        self,
        options: SlurmOptions | None = None,
        *,
        conf: Path | None = None,
        log_dir: Path | None = None,
        python: str = sys.executable,
        poll_interval: float = 1.0,
        refresh_interval: float = 10.0,
        pending_limit: float = 60.0,
        stop_grace: float = 60.0,
    ) -> None:
        self.options = options or SlurmOptions()
        # The cluster's slurm.conf: given, else SLURM_CONF or the machine's own.
        self._env = {**os.environ, "SLURM_CONF": str(conf)} if conf is not None else None
        partition = read_partition(self.options.partition, self._env)
        self.partition = partition.name
        self._nodes = list(partition.nodes)
        self._log_dir = log_dir
        self._python = python
        self._poll_interval = poll_interval
        self._refresh_interval = refresh_interval
        self._pending_limit = pending_limit
        self._stop_grace = stop_grace
        self._jobs: dict[str, _Job] = {}
        self._stopping: set[str] = set()
        self._on_exit: ExitHandler | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    def job_id(self, worker_id: str) -> str | None:
        job = self._jobs.get(worker_id)
        return job.job_id if job is not None else None

    # ---- submitting ----------------------------------------------------------------------
    def sbatch_args(self, spec: WorkerSpec, log: Path | None) -> list[str]:
        """sbatch's arguments for ``spec`` (no secret among them)."""
        command = [self._python, "-m", "dacirco.worker", *worker_command(spec)]
        # The worker announces the node SLURM put it on, by SLURM's name for it.
        script = f'export DACIRCO_WORKER_NODE="$SLURMD_NODENAME"; exec {shlex.join(command)}'
        flavor = spec.flavor
        args = [
            "sbatch", "--parsable", "--export=ALL", "--no-requeue",
            f"--job-name=dacirco-{spec.name}", f"--comment=dacirco worker {spec.worker_id}",
            "--nodes=1", "--ntasks=1", f"--cpus-per-task={flavor.cpus}",
            f"--mem={round(flavor.memory_gb * 1024)}M",
            f"--partition={self.partition}",
            f"--output={log or os.devnull}", f"--chdir={self._log_dir or '/tmp'}",
        ]  # fmt: skip
        if spec.node:
            args.append(f"--nodelist={spec.node}")
        if self.options.account:
            args.append(f"--account={self.options.account}")
        if self.options.time_limit is not None:
            args.append(f"--time={time_limit(self.options.time_limit)}")
        return [*args, f"--wrap={script}"]

    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._jobs:
            return
        log_path, log_start = None, 0
        env = worker_env(self._env or os.environ, spec.token)
        if self._log_dir is not None:
            log_path = worker_log(self._log_dir, spec, env)
            with contextlib.suppress(OSError):
                log_start = log_path.stat().st_size
        try:
            out = await _run(*self.sbatch_args(spec, log_path), env=env)
        except SlurmCommandError as exc:
            why = sbatch_error(str(exc))
            message = f"sbatch refused {spec.name} on partition {self.partition}: {why}"
            if refused_for_now(str(exc)):
                raise CapacityRefused(message) from None
            raise RuntimeError_(message) from None
        job_id = parse_job_id(out)
        if job_id is None:
            raise RuntimeError_(f"sbatch gave no job id for {spec.name}: {out.strip()[:200]!r}")
        self._jobs[spec.worker_id] = _Job(job_id, log_path, log_start)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_loop())

    # ---- watching ------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        last_refresh = time.monotonic()
        while not self._closed:
            await asyncio.sleep(self._poll_interval)
            try:
                await self._poll()
                if time.monotonic() - last_refresh > self._refresh_interval:
                    last_refresh = time.monotonic()
                    await self._refresh_nodes()
            except Exception as exc:  # SLURM briefly away: the next round tries again
                log.warning("cannot read the SLURM queue: %s", " ".join(str(exc).split()))

    async def _refresh_nodes(self) -> None:
        out = await _run("sinfo", "--noheader", "--Node", f"--format={SINFO_FORMAT}", env=self._env)
        found = parse_sinfo(out).get(self.partition)
        if found is not None:
            self._nodes = list(found.nodes)

    async def _poll(self) -> None:
        watched = {wid: job for wid, job in self._jobs.items() if wid not in self._stopping}
        if not watched:
            return
        states = await _queue(self._env)
        now = time.monotonic()
        for wid, job in watched.items():
            if self._jobs.get(wid) is not job or wid in self._stopping:
                continue
            state, reason = states.get(job.job_id, ("", ""))
            if state in WAITING:
                job.pending_since = job.pending_since or now
                if now - job.pending_since > self._pending_limit:
                    await self._no_room(wid, job, reason)
            elif state in ENDED or not state:
                await self._ended(wid, job, state or "gone from the queue", reason)
            else:
                job.pending_since = None

    async def _no_room(self, worker_id: str, job: _Job, reason: str) -> None:
        self._jobs.pop(worker_id, None)
        with contextlib.suppress(SlurmCommandError):
            await _run("scancel", job.job_id, env=self._env)
        why = (
            f"SLURM job {job.job_id} pending for more than {self._pending_limit:g} s ({reason}) "
            f"on partition {self.partition}: no room for it, cancelled"
        )
        await self._report(WorkerExit(worker_id, ExitCause.NO_CAPACITY, why))

    async def _ended(self, worker_id: str, job: _Job, state: str, reason: str) -> None:
        self._jobs.pop(worker_id, None)
        words = f"SLURM job {job.job_id} {state.lower()}"
        if reason and reason != "None":
            words += f" ({reason})"
        with contextlib.suppress(SlurmCommandError):
            code = exit_code(
                await _run("scontrol", "show", "job", "--oneliner", job.job_id, env=self._env)
            )
            words += f", {code}" if code else ""
        if job.log is not None:
            tail = await asyncio.to_thread(log_tail, job.log, job.log_start)
            words += f": {tail}" if tail else ""
        # SLURM took the cores back for other work (a preemption): the worker's task waits
        # again without counting an attempt, as for a pilot stopped by its machine's owner.
        cause = ExitCause.PREEMPTED if state.upper() == "PREEMPTED" else ExitCause.CRASHED
        await self._report(WorkerExit(worker_id, cause, words))

    async def _report(self, exit: WorkerExit) -> None:
        if self._on_exit is None:
            return
        try:
            await self._on_exit(exit)
        except Exception:
            log.exception("exit handler failed for worker %s", exit.worker_id)

    # ---- stopping ------------------------------------------------------------------------
    async def stop(self, worker_id: str) -> None:
        job = self._jobs.get(worker_id)
        if job is None or worker_id in self._stopping:
            return
        self._stopping.add(worker_id)
        try:
            await self._cancel(job)
        finally:
            self._jobs.pop(worker_id, None)
            self._stopping.discard(worker_id)

    async def _cancel(self, job: _Job) -> None:
        """scancel, then wait (polling squeue) until the job has left its node."""
        deadline = time.monotonic() + self._stop_grace
        while True:
            try:
                await _run("scancel", job.job_id, env=self._env)
                break
            except SlurmCommandError as exc:
                if _GONE.search(str(exc)):
                    return
                if time.monotonic() > deadline:
                    log.warning("cannot cancel SLURM job %s: %s", job.job_id, exc)
                    return
                await asyncio.sleep(1.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(SlurmCommandError):
                state, _ = (await _queue(self._env)).get(job.job_id, ("", ""))
                if not state or state in ENDED:
                    return
            await asyncio.sleep(0.25)
        log.warning(
            "SLURM job %s still on its node %g s after scancel", job.job_id, self._stop_grace
        )

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(self.stop(w) for w in list(self._jobs)), return_exceptions=True)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
