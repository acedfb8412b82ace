"""Local runtime: each worker is a real OS process (``python -m dacirco.worker``) on this host."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from dacirco.domain import ExitCause, Node
from dacirco.runtimes.base import (
    ExitHandler,
    RuntimeError_,
    WorkerExit,
    WorkerSpec,
    worker_command,
    worker_env,
)
from dacirco.worker.logfile import LOG_ENV

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


LOG_TAIL_LINES = 3
LOG_TAIL_CHARS = 300
_LOG_TAIL_READ = 8192


def log_tail(path: Path, since: int = 0) -> str:
    """The last few non-empty lines ``path`` got past byte ``since``, on one short line."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            since = since if since <= size else 0  # the worker moved its full log aside
            f.seek(max(since, size - _LOG_TAIL_READ))
            data = f.read()
    except OSError:
        return ""
    lines = [" ".join(ln.split()) for ln in data.decode("utf-8", "replace").splitlines()]
    text = " | ".join([ln for ln in lines if ln][-LOG_TAIL_LINES:])
    return text if len(text) <= LOG_TAIL_CHARS else "…" + text[-(LOG_TAIL_CHARS - 1) :]


@dataclass
class _Proc:
    proc: asyncio.subprocess.Process
    log: Path | None  # its log file
    log_start: int  # the log's size when it started: what it wrote comes after
    work_dir: Path | None


def worker_log(log_dir: Path, spec: WorkerSpec, env: dict[str, str]) -> Path:
    """The log file of ``spec``'s worker in ``log_dir`` (made if missing), named in ``env``
    so that the worker caps it (worker/logfile.py)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{_folder_name(spec.name, spec.worker_id)}.log"
    env[LOG_ENV] = str(path)
    return path


def _folder_name(name: str, worker_id: str) -> str:
    ok = name and name not in (".", "..") and "/" not in name and "\\" not in name
    return name if ok else worker_id


class LocalRuntime:
    """Workers as local processes.

    Each one logs to ``<log_dir>/<name>.log`` and keeps its per-task files in
    ``<work_root>/<name>``; that folder is removed once the process has exited, however it
    exited (even killed -9, when it could not clean up itself).
    """

    name = "local"

    def __init__(
        self,
        *,
        cpus: int | None = None,
        memory_gb: float | None = None,
        log_dir: Path | None = None,
        work_root: Path | None = None,
        python: str = sys.executable,
        stop_grace: float = 10.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """``extra_args``: more options of ``dacirco worker`` for every worker (a node
        agent's pilots: ``--idle-exit``)."""
        total_gb = psutil.virtual_memory().total / 2**30
        self._node = Node(
            name=socket.gethostname(),
            cpus=cpus or os.cpu_count() or 1,
            memory_gb=round(memory_gb or total_gb, 1),
        )
        self._log_dir = log_dir
        self._work_root = work_root
        self._python = python
        self._stop_grace = stop_grace
        self._extra_args = extra_args
        self._procs: dict[str, _Proc] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()
        self._on_exit: ExitHandler | None = None

    def nodes(self) -> list[Node]:
        return [self._node]

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    def pid(self, worker_id: str) -> int | None:
        entry = self._procs.get(worker_id)
        return entry.proc.pid if entry is not None else None

    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._procs:
            return
        cmd = [self._python, "-m", "dacirco.worker", *worker_command(spec), *self._extra_args]
        work_dir = None
        if self._work_root is not None:
            work_dir = self._work_root / _folder_name(spec.name, spec.worker_id)
            cmd += ["--work-dir", str(work_dir)]
        env = worker_env(os.environ, spec.token)
        out = None
        log_path = None
        log_start = 0
        if self._log_dir is not None:
            log_path = worker_log(self._log_dir, spec, env)
            out = log_path.open("ab")
            log_start = out.seek(0, os.SEEK_END)
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
        entry = _Proc(proc, log_path, log_start, work_dir)
        self._procs[spec.worker_id] = entry
        self._watchers[spec.worker_id] = asyncio.create_task(self._watch(spec.worker_id, entry))

    async def _watch(self, worker_id: str, entry: _Proc) -> None:
        code = await entry.proc.wait()
        if entry.work_dir is not None:
            # A worker killed -9 leaves its task files (tens of MB) behind: they go now.
            await asyncio.to_thread(shutil.rmtree, entry.work_dir, ignore_errors=True)
        self._procs.pop(worker_id, None)
        self._watchers.pop(worker_id, None)
        expected = worker_id in self._stopping
        self._stopping.discard(worker_id)
        if not expected and self._on_exit is not None:
            reason = f"worker process exited with code {code}"
            if code < 0:
                reason = f"worker process killed by signal {-code}"
            if entry.log is not None:
                tail = await asyncio.to_thread(log_tail, entry.log, entry.log_start)
                if tail:
                    reason = f"{reason}: {tail}"
            try:
                await self._on_exit(WorkerExit(worker_id, ExitCause.CRASHED, reason, code))
            except Exception:
                log.exception("exit handler failed for worker %s", worker_id)

    async def stop(self, worker_id: str) -> None:
        entry = self._procs.get(worker_id)
        if entry is None or entry.proc.returncode is not None:
            return
        proc = entry.proc
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
        # Workers that exited on their own just before: let their folders go too.
        await asyncio.gather(*list(self._watchers.values()), return_exceptions=True)
