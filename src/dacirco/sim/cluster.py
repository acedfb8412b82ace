"""The simulated data center: its nodes and what they hold.

Everything else of the cluster (views, checks, placement, lifecycle) is the controller's own
core (``dacirco.core``), driven by ``sim.run``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dacirco.domain import Flavor, Node


@dataclass(frozen=True)
class DataCenter:
    nodes: tuple[Node, ...]

    @classmethod
    def reference(cls) -> DataCenter:
        """SPEC §1: compute1..3, 6 cores and 16 GB each."""
        return cls.uniform(3, 6, 16.0)

    @classmethod
    def uniform(cls, count: int, cpus: int, memory_gb: float) -> DataCenter:
        if count < 1 or cpus < 1 or memory_gb <= 0:
            raise ValueError("a data center needs >= 1 node, >= 1 core and some memory")
        return cls(tuple(Node(f"compute{i + 1}", cpus, memory_gb) for i in range(count)))

    @property
    def cpus(self) -> int:
        return sum(n.cpus for n in self.nodes)

    @property
    def memory_gb(self) -> float:
        return sum(n.memory_gb for n in self.nodes)

    def holds(self, flavor: Flavor) -> int:
        """How many workers of ``flavor`` fit on the empty data center."""
        return sum(
            int(min(n.cpus // flavor.cpus, n.memory_gb // flavor.memory_gb)) for n in self.nodes
        )
