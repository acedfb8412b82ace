"""What adaptive's pool reads of the recent requests' work (``RecentStats.recent_work``, the
last requests' work, sorted) at one rate, one boot and one way of splitting: their seconds
on one core, the chunks each makes, and those that cannot afford to wait a boot. It changes
when a request comes or a task ends, not at each decision (``Adaptive.recent`` keeps the
last one made)."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Recent:
    """What the pool reads of the recent requests' work (``view.stats.recent_work``) at one
    rate, one boot and one way of splitting. It changes when a request comes or a task ends,
    not at each decision: ``Adaptive.recent`` makes it once for each (``digest``)."""

    works: tuple[float, ...]  # the stats' tuple (held: its id keys the memo)
    rate: float
    boot: float
    can_split: bool
    seconds: float  # their seconds on one core, summed
    chunks: tuple[int, ...]  # the tasks each made or would make (1 unsplit)
    chunk_sum: int
    sensitive: int  # those that cannot afford to wait a boot (shorter than boot / wait_share)
    sensitive_seconds: float  # their seconds, summed
    spread: float  # E[k²]/E[k] of their chunks (0 when none)


def digest(
    works: tuple[float, ...],
    rate: float,
    boot: float,
    can_split: bool,
    piece: float,
    wait_share: float,
    max_chunks: int,
) -> Recent:
    """``works`` (sorted) at ``rate`` seconds per unit of work on one core: a request makes
    ``ceil(its seconds / piece)`` chunks (1 to ``max_chunks``), and cannot afford a boot when
    its seconds times ``wait_share`` are under ``boot``. Both grow with its work: each is
    found by bisection, with the same arithmetic as for one request, and the sums run in the
    works' order (the figures are those of request-by-request sums, to the bit)."""
    top = max(1, max_chunks)  # chunks a request makes at most (one, whatever the knob)

    def chunks_of(w: float) -> int:
        return max(1, min(max_chunks, math.ceil(w * rate / piece)))

    n = len(works)
    sensitive = bisect_left(works, True, key=lambda w: w * rate * wait_share >= boot)
    # starts[j]: the first request with more than j chunks
    starts = (
        [0]
        + [bisect_left(works, True, key=lambda w, j=j: chunks_of(w) > j) for j in range(1, top)]
        + [n]
    )
    chunks: list[int] = []
    k_sum = k2_sum = 0
    for j in range(1, top + 1):
        lo, hi = starts[j - 1], starts[j]
        chunks += [j] * (hi - lo)
        within = max(0, min(hi, sensitive) - lo)
        k_sum += j * within
        k2_sum += j * j * within
    return Recent(
        works,
        rate,
        boot,
        can_split,
        seconds=sum(map(rate.__mul__, works)),
        chunks=tuple(chunks),
        chunk_sum=sum(chunks),
        sensitive=sensitive,
        sensitive_seconds=sum(map(rate.__mul__, works[:sensitive])),
        spread=k2_sum / k_sum if k_sum else 0.0,
    )
