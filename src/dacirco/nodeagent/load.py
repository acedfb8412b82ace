"""The owner's load on this machine: what processes other than the agent's pilots (and their
ffmpeg children) ask of the CPU, in cores.

Two readings, the larger counts: the CPU the others used since the last sample (all busy CPU,
``psutil.cpu_times``, less the pilots' process trees) and the threads of others ready to run
now (the kernel's run queue, ``/proc/loadavg``, less the pilots' running threads and the
reader). The first is what the brief of a load meter says; the second still sees an owner
come back on a machine whose CPU is already saturated (then the busy share cannot grow, but
the queue of those who wait for it does).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

PROC = Path("/proc")


def _busy(times: psutil._common.scputimes) -> tuple[float, float]:  # type: ignore[name-defined]
    """(busy, total) seconds of CPU in ``times``."""
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def running_threads() -> int | None:
    """Threads ready to run now, machine-wide (None where ``/proc/loadavg`` is missing)."""
    try:
        field = (PROC / "loadavg").read_text().split()[3]
        return int(field.split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes ``pids`` and all their children (those still there)."""
    out: list[psutil.Process] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            out += [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
    return out


def threads_running(procs: Iterable[psutil.Process]) -> int:
    """How many threads of ``procs`` are running or ready to run (state R)."""
    count = 0
    for proc in procs:
        try:
            tids = os.listdir(PROC / str(proc.pid) / "task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = (PROC / str(proc.pid) / "task" / tid / "stat").read_text()
            except OSError:
                continue
            count += stat.rpartition(")")[2].split()[:1] == ["R"]
    return count


class LoadMeter:
    """Samples the owner's load; ``ours()`` gives the pilots' process ids."""

    def __init__(self, ours: Callable[[], list[int]], clock: Callable[[], float] = time.monotonic):
        self.cores = psutil.cpu_count() or 1
        self._ours = ours
        self._clock = clock
        self._busy, self._total = _busy(psutil.cpu_times())
        self._cpu: dict[int, float] = {}  # pid -> its CPU seconds at the last sample
        self._at = clock()
        self.cpu_others = 0.0
        self.queue_others = 0.0

    def sample(self) -> float:
        """The owner's load since the last sample, in cores."""
        busy, total = _busy(psutil.cpu_times())
        d_busy, d_total = busy - self._busy, total - self._total
        self._busy, self._total = busy, total
        now = self._clock()
        wall, self._at = max(now - self._at, 1e-6), now
        procs = tree(self._ours())
        ours_cpu, seen = 0.0, {}
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            used = t.user + t.system
            seen[proc.pid] = used
            ours_cpu += max(0.0, used - self._cpu.get(proc.pid, used))
        self._cpu = seen
        busy_cores = d_busy / d_total * self.cores if d_total > 0 else 0.0
        self.cpu_others = max(0.0, busy_cores - ours_cpu / wall)
        queue = running_threads()
        if queue is not None:  # less ours, less this very thread reading it
            self.queue_others = float(max(0, queue - threads_running(procs) - 1))
        return max(self.cpu_others, self.queue_others)
