"""adaptive's pool, sized from the traffic it observes (``policies/adaptive.py`` says how and
why): the arrival rate with its bursts, lulls and silences, the chunks a job is worth, the
workers the traffic keeps busy, the M/M/c spare margin, and the idle workers worth keeping
for the next boot's requests. Pure arithmetic on the view; the decisions are adaptive's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dacirco.policies.base import ClusterView, JobView
from dacirco.policies.chunk_plan import due_within
from dacirco.policies.queueing import servers_for_wait
from dacirco.policies.recent_work import Recent, digest
from dacirco.policies.stats import LONG_WINDOW, SHORT_WINDOW
from dacirco.policies.work import view_work

FLAVOR = "tiny"
MIN_ARRIVALS = 10  # requests seen before the traffic's rate is trusted
MIN_PIECE_S = 1.0  # seconds: a chunk shorter than this is mostly its fixed costs
STOPPED_P = 0.05  # a silence this unlikely among the long window's gaps: the traffic stopped


@dataclass(frozen=True)
class PoolSizing:
    """The knobs of the pool's size, and the pool read from a view."""

    wait_share: float = 0.25  # a request's mean wait for a worker, as a share of its length
    # Chunks last this share of the median recent job: the typical job itself goes in two,
    # and the longer jobs that make a p95 end within about a typical job's time.
    piece_share: float = 0.75
    # The most chunks a job goes in: a long one in more would hold more workers at once than
    # the pool keeps spare, and wait for boots (docs/policies.md, "adaptive against its
    # targets", measures 5 against 6 and 8).
    max_chunks: int = 5
    burst_z: float = 2.0  # standard deviations of the last minute's count that make a burst
    gap_test: float = 3.0  # a silence of this many mean inter-arrival times: traffic stopped
    default_boot: float = 20.0  # seconds, until a boot has been seen
    default_rate: float = 0.5  # seconds per unit of work on one core, until one is measured
    # The last ``Recent`` made: a memo of a pure function of its key, not state.
    _recent: list[Recent] = field(default_factory=list, init=False, repr=False, compare=False)

    # ---- what the traffic asks ---------------------------------------------------------------
    def boot(self, view: ClusterView) -> float:
        b = view.stats.boot_seconds
        return b if b is not None else self.default_boot

    def rate(self, view: ClusterView) -> float:
        """Seconds per unit of work on a one-core worker."""
        r = view.stats.seconds_per_work.get(FLAVOR)
        return r if r is not None else self.default_rate

    def arrival_rate(self, view: ClusterView) -> float:
        s = view.stats
        lam = s.rate_long
        expected, seen = s.rate_long * SHORT_WINDOW, s.rate_short * SHORT_WINDOW
        if abs(seen - expected) > self.burst_z * math.sqrt(max(expected, 1.0)):
            lam = s.rate_short
        if s.last_arrival is not None and lam > 0:
            gap = view.now - s.last_arrival
            if gap * lam > self.gap_test:
                lam = 1.0 / gap
        return lam

    def piece(self, view: ClusterView, rate: float) -> float:
        """Seconds a chunk should last: a share of the median recent job's."""
        works = view.stats.recent_work
        if not works:
            return math.inf
        return max(MIN_PIECE_S, self.piece_share * works[len(works) // 2] * rate)

    def chunks(self, job: JobView, rate: float, piece: float) -> int:
        if not job.frames:
            return 1
        k = math.ceil(view_work(job) * rate / piece)
        return max(1, min(k, self.max_chunks, job.frames))

    def recent(self, view: ClusterView, rate: float) -> Recent:
        """The recent requests' work as the pool reads it (made again only when the work,
        the rate, the boot or the splitting changed)."""
        works, boot, can_split = view.stats.recent_work, self.boot(view), view.limits.can_split
        memo = self._recent
        if memo:
            r = memo[0]
            if r.works is works and r.rate == rate and r.boot == boot and r.can_split == can_split:
                return r
        rate = float(rate)  # its own product with each work (an int's is NotImplemented)
        piece = self.piece(view, rate) if can_split else math.inf
        r = digest(works, rate, boot, can_split, piece, self.wait_share, self.max_chunks)
        memo[:] = [r]
        return r

    def busy(self, view: ClusterView, rate: float, lam: float) -> float:
        """The workers requests arriving at ``lam`` per second keep busy, by the recent
        ones' mean work."""
        works = view.stats.recent_work
        return lam * self.recent(view, rate).seconds / len(works) if works else 0.0

    def pool(
        self,
        view: ClusterView,
        rate: float,
        lam: float | None = None,
        due: int | None = None,
        busy: int | None = None,
    ) -> float:
        """The workers the traffic keeps busy, plus the spare ones (M/M/c, ``spare``) for
        the jobs a boot would delay by more than ``wait_share`` of their length, but no more
        idle ones than the tasks expected within one boot would take, less the busy workers
        due within it (``due``, counted here unless given): each takes one of those tasks.
        With a season, whole workers only (rounded down): the forecast is the traffic's own
        rhythm, not a rate from lagging windows that a spare fraction hedges. ``busy``: the
        busy workers (those of the view unless given)."""
        works = view.stats.recent_work
        if not works or view.stats.arrivals < MIN_ARRIVALS:
            return 0.0  # a rate from so few arrivals is noise: only the queue starts workers
        lam = self.arrival_rate(view) if lam is None else lam
        boot = self.boot(view)
        recent = self.recent(view, rate)
        load = self.busy(view, rate, lam)
        # An idle worker kept longer than the next boot's worth of tasks needs costs more
        # than booting one when needed (ski rental).
        cap = self.kept(view, lam, boot, recent, busy) - (
            due_within(view, rate, boot) if due is None else due
        )
        if view.stats.season is not None:
            cap = math.floor(cap + 1e-9)
        # The jobs that cannot afford to wait a boot: shorter than boot / wait_share.
        if not recent.sensitive:
            return min(load, cap)
        mean_s = recent.sensitive_seconds / recent.sensitive
        busy_s = lam * recent.sensitive / len(works) * mean_s
        # Jobs of unknown length (no work): no load to keep a margin for.
        spare = self.spare(busy_s, recent.spread, boot / mean_s) if mean_s > 0 else 0.0
        return min(load + spare, cap)

    def spare(self, load: float, spread: float, boot: float) -> float:
        """Spare workers beyond the ``load`` the sensitive jobs keep busy, so that their mean
        wait is ``wait_share`` of their mean length when a boot lasts ``boot`` of them: the
        M/M/c pool for that load (``queueing.servers_for_wait``). A job split in k chunks
        asks for k workers at once: the busy count varies ``spread`` = E[k²]/E[k] times
        more, so the spare margin grows by its square root."""
        return (servers_for_wait(load, self.wait_share, boot) - load) * math.sqrt(spread)

    def kept(
        self, view: ClusterView, lam: float, boot: float, recent: Recent, busy: int | None = None
    ) -> float:
        """The workers worth keeping for the requests of the next boot, at ``lam`` per
        second, each making as many tasks as the ``recent`` requests' chunks on average: the
        busy ones (``busy``, else the view's), and one per task expected."""
        busy = len(view.busy) if busy is None else busy
        return busy + lam * recent.chunk_sum / len(recent.chunks) * boot

    def hold(self, view: ClusterView, rate: float, boot: float, busy: int | None = None) -> float:
        """The idle workers kept a while (``linger_boots``) at most: ``kept`` at the higher
        of the two recent rates, unless the traffic stopped: a silence that, at that rate,
        none of the long window's gaps would have matched but with a chance below
        ``STOPPED_P`` (the rate is then one over the silence). Infinite before the rate is
        trusted. ``busy``: the busy workers (those of the view unless given)."""
        s = view.stats
        if not s.recent_work or s.arrivals < MIN_ARRIVALS:
            return math.inf
        lam = max(s.rate_short, s.rate_long)
        if s.last_arrival is not None and lam > 0:
            gap = view.now - s.last_arrival
            if gap * lam > math.log(max(1.0, lam * LONG_WINDOW) / STOPPED_P):
                lam = 1.0 / gap
        return self.kept(view, lam, boot, self.recent(view, rate), busy)
