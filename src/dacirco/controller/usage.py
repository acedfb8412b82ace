"""What the machines and workers really use: the controller's own sampler, the samples the
workers send, the run's samples file, and the latest figures per worker for ``/metrics``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dacirco.protocol import WorkerSample
from dacirco.sampling import NodeProbe, SampleFile, Sampler, own_tree


@dataclass(frozen=True)
class WorkerUsage:
    cpu_cores: float
    rss_gb: float
    at: float  # controller time it arrived


class Usage:
    """Writes every sample to ``path`` (beside the event log) and remembers the latest ones."""

    def __init__(self, path: Path, interval: float = 1.0, max_bytes: int = 0) -> None:
        self.file = SampleFile(path, max_bytes)
        self.interval = interval
        self.workers: dict[str, WorkerUsage] = {}
        self.node: dict[str, Any] | None = None  # the controller's node, latest sample
        self._sampler: Sampler | None = None

    @property
    def path(self) -> Path:
        return self.file.path

    def start(self) -> None:
        if self.interval > 0 and self._sampler is None:
            # Not its children: local workers are, and they sample themselves.
            probes = [NodeProbe(), own_tree("controller", children=False)]
            self._sampler = Sampler(probes, self._own, self.interval).start()

    def _own(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            if r["kind"] == "node":
                self.node = r
        self.file.write(records)

    def add(self, worker_id: str, samples: list[WorkerSample]) -> None:
        """Samples a worker sent: written as its own, whatever id it put in them."""
        records = []
        for s in samples:
            record = s.model_dump(exclude_none=True)
            if s.kind == "process":
                record |= {"role": "worker", "worker_id": worker_id}
                self.workers[worker_id] = WorkerUsage(
                    s.cpu_cores or 0.0, s.rss_gb or 0.0, time.time()
                )
            records.append(record)
        self.file.write(records)

    def forget(self, worker_id: str) -> None:
        self.workers.pop(worker_id, None)

    @property
    def cost(self) -> float:
        """Fraction of one core the controller's sampler has used."""
        return self._sampler.cost if self._sampler else 0.0

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        self.file.close()
