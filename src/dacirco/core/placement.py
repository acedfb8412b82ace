"""Where a worker fits: one rule for the policies, the core's checks and the simulator.

A node holds a flavor while its free cores and free memory (its capacity less what the
workers placed on it reserve) are both at least the flavor's. With no node named, a worker
goes to the node with the most free cores that fits (ties: most free memory, then the node
listed first), as the spreading weighers of OpenStack and Kubernetes do; an opportunistic
node (a node agent's idle machine, whose workers may be preempted) only when no node of our
own has room: a policy that wants one for a chunk or a short job names it
(``policies/preemptible.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dacirco.domain import Flavor

MAX_CHUNKS = 16  # most chunks a job may be split in


class HasRoom(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def free_cpus(self) -> float: ...
    @property
    def free_memory_gb(self) -> float: ...


def fits(node: HasRoom, flavor: Flavor) -> bool:
    return node.free_cpus >= flavor.cpus and node.free_memory_gb >= flavor.memory_gb


def how_many(node: HasRoom, flavor: Flavor) -> int:
    """How many more workers of ``flavor`` the node holds."""
    return max(0, int(min(node.free_cpus // flavor.cpus, node.free_memory_gb // flavor.memory_gb)))


def place(nodes: Sequence[HasRoom], flavor: Flavor) -> str | None:
    """The node a new worker of ``flavor`` goes to, or None when none has room."""
    best, key = None, None
    for i, node in enumerate(nodes):
        if fits(node, flavor):
            k = (not getattr(node, "opportunistic", False), node.free_cpus, node.free_memory_gb, -i)
            if key is None or k > key:
                best, key = node.name, k
    return best
