"""The runtime a service runs its workers on, built from its options (``--runtime``).

Each runtime module exposes what it needs as fields of ``RuntimeOptions``; a runtime whose
optional packages are missing is refused here with a one-line ``RuntimeUnavailable`` that
names the extra to install, before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dacirco.runtimes.base import Runtime
from dacirco.runtimes.local import LocalRuntime

RUNTIMES = ("local",)


class RuntimeUnavailable(ValueError):
    """The runtime cannot be used here (a missing package, an unreachable cluster)."""


@dataclass(frozen=True)
class RuntimeOptions:
    kind: str = "local"
    log_dir: Path | None = None  # local: the workers' log files
    work_root: Path | None = None  # local: the workers' task folders
    local_cpus: int | None = None
    local_memory_gb: float | None = None


def make_runtime(options: RuntimeOptions) -> Runtime:
    if options.kind == "local":
        return LocalRuntime(
            cpus=options.local_cpus,
            memory_gb=options.local_memory_gb,
            log_dir=options.log_dir,
            work_root=options.work_root,
        )
    raise RuntimeUnavailable(f"--runtime {options.kind!r}: choose one of {', '.join(RUNTIMES)}")
