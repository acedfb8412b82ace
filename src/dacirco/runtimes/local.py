"""Local runtime: each worker is a real OS process (``python -m dacirco.worker``) on this host."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import psutil

from dacirco.domain import Flavor, Node
from dacirco.protocol import TOKEN_ENV
from dacirco.runtimes.base import ExitHandler, RuntimeError_, WorkerSpec

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _libc_prctl():  # type: ignore[no-untyped-def]
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _libc_prctl()


def _die_with_parent() -> None:
    # A worker whose controller was killed -9 must not live on as an orphan.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalRuntime:
    name = "local"

    def __init__(
        self,
        *,
        cpus: int | None = None,
        memory_gb: float | None = None,
        log_dir: Path | None = None,
        python: str = sys.executable,
        stop_grace: float = 10.0,
    ) -> None:
        total_gb = psutil.virtual_memory().total / 2**30
        self._node = Node(
            name=socket.gethostname(),
            cpus=cpus or os.cpu_count() or 1,
            memory_gb=round(memory_gb or total_gb, 1),
        )
        self._log_dir = log_dir
        self._python = python
        self._stop_grace = stop_grace
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()
        self._on_exit: ExitHandler | None = None

    def nodes(self) -> list[Node]:
        return [self._node]

    def place(self, flavor: Flavor) -> str | None:
        return self._node.name

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    def pid(self, worker_id: str) -> int | None:
        proc = self._procs.get(worker_id)
        return proc.pid if proc is not None else None

    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._procs:
            return
        cmd = [
            self._python, "-m", "dacirco.worker",
            "--controller", spec.controller_url,
            "--worker-id", spec.worker_id,
            "--name", spec.name,
            "--cpus", str(spec.flavor.cpus),
            "--memory-gb", f"{spec.flavor.memory_gb:g}",
        ]  # fmt: skip
        env = {**os.environ, TOKEN_ENV: spec.token}
        out = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            out = (self._log_dir / f"{spec.name}.log").open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out if out is not None else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT if out is not None else None,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise RuntimeError_(f"cannot start worker process: {exc}") from exc
        finally:
            if out is not None:
                out.close()
        self._procs[spec.worker_id] = proc
        self._watchers[spec.worker_id] = asyncio.create_task(self._watch(spec.worker_id, proc))

    async def _watch(self, worker_id: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self._procs.pop(worker_id, None)
        self._watchers.pop(worker_id, None)
        expected = worker_id in self._stopping
        self._stopping.discard(worker_id)
        if not expected and self._on_exit is not None:
            reason = f"worker process exited with code {code}"
            if code < 0:
                reason = f"worker process killed by signal {-code}"
            try:
                await self._on_exit(worker_id, reason)
            except Exception:
                log.exception("exit handler failed for worker %s", worker_id)

    async def stop(self, worker_id: str) -> None:
        proc = self._procs.get(worker_id)
        if proc is None or proc.returncode is not None:
            return
        self._stopping.add(worker_id)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self._stop_grace)
        except TimeoutError:
            log.warning(
                "worker %s ignored SIGTERM for %.0f s: killing it", worker_id, self._stop_grace
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        watcher = self._watchers.get(worker_id)
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(w) for w in list(self._procs)), return_exceptions=True)
