"""What the SLURM runtime reads from and says to SLURM's own commands (``sinfo``, ``sbatch``,
``squeue``, ``scontrol``): their parsable output, and ``sbatch``'s refusals sorted into
"no room now" (the jobs wait) and "never" (a configuration to fix). Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dacirco.domain import Node

# sinfo --Node: one line a node and partition.
SINFO_FORMAT = "%N|%P|%a|%c|%m|%T"
# squeue --states=all: the jobs it still knows (finished ones for MinJobAge, 300 s by default).
SQUEUE_FORMAT = "%i|%T|%r"

USABLE = {"idle", "mixed", "allocated", "completing", "planned"}
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
# Past these a job is over (squeue's long names).
ENDED = {
    "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
    "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT",
}  # fmt: skip

# sbatch refusals that mean "not now" (a limit reached, a partition drained or down, the
# controller busy or away): the controller waits and tries again, the jobs wait.
_NOT_NOW = re.compile(
    r"not available \(inactive or drain\)|partition.*(down|inactive)|QOSMax|AssocMax|"
    r"MaxSubmit|submit limit|accounting/QOS policy|job count limit|"
    r"temporarily unable|Unable to contact slurm controller|Socket timed out|"
    r"Resource temporarily unavailable|Slurm backup controller in standby mode|did not answer",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    up: bool
    nodes: tuple[Node, ...]


def parse_sinfo(text: str) -> dict[str, Partition]:
    """The partitions in ``sinfo --noheader --Node --format=SINFO_FORMAT`` and the nodes of
    each that can take jobs (responding, neither down nor drained)."""
    rows: dict[str, tuple[bool, bool, list[Node]]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        node, part, avail, cpus, memory, state = parts
        default = part.endswith("*")
        name = part.rstrip("*")
        entry = rows.setdefault(name, (default, avail == "up", []))
        base = state.rstrip("*~#!%$@^-+")
        if state.endswith("*") or base not in USABLE:
            continue
        try:
            found = Node(name=node, cpus=int(cpus), memory_gb=round(int(memory) / 1024, 1))
        except ValueError:
            continue
        if found.cpus >= 1 and found.name not in {n.name for n in entry[2]}:
            entry[2].append(found)
    return {
        name: Partition(name, default, up, tuple(sorted(nodes, key=lambda n: n.name)))
        for name, (default, up, nodes) in rows.items()
    }


def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) from ``squeue --noheader --format=SQUEUE_FORMAT``."""
    jobs: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            jobs[parts[0]] = (parts[1].upper(), parts[2])
    return jobs


def parse_job_id(stdout: str) -> str | None:
    """The job id ``sbatch --parsable`` printed (``id`` or ``id;cluster``)."""
    first = stdout.strip().split(";")[0]
    return first if first.isdigit() else None


def exit_code(scontrol_line: str) -> str | None:
    """``ExitCode=code:signal`` of ``scontrol show job --oneliner``, as words."""
    found = re.search(r"\bExitCode=(\d+):(\d+)", scontrol_line)
    if found is None:
        return None
    code, sig = int(found[1]), int(found[2])
    return f"killed by signal {sig}" if sig else f"exit code {code}"


def sbatch_error(stderr: str) -> str:
    """sbatch's complaint on one line, without its ``sbatch: error:`` prefixes."""
    lines = [re.sub(r"^sbatch:\s*(error:\s*)?", "", ln.strip()) for ln in stderr.splitlines()]
    text = "; ".join(dict.fromkeys(ln for ln in lines if ln)) or "no reason given"
    return text if len(text) <= 300 else text[:299] + "…"


def refused_for_now(stderr: str) -> bool:
    """Whether an sbatch refusal is a limit or an outage that passes (the jobs wait)."""
    return _NOT_NOW.search(stderr) is not None


def time_limit(seconds: float) -> str:
    """A duration as sbatch's ``--time`` (``D-HH:MM:SS``), rounded up to the minute: SLURM
    keeps time limits in whole minutes."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00"
