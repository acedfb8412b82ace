"""/metrics' counters (``Tally``) stay equal to a full count of the stored jobs and
workers through every kind of step, and across a restart."""

from __future__ import annotations

from dacirco.controller.core import Controller
from dacirco.controller.tally import Tally
from tests.unit.conftest import Make


async def same_as_a_scan(c: Controller) -> None:
    """Against a count of every job stored (finished jobs leave memory, not the store)."""
    jobs, workers, _ = await c.store.load()
    scan = Tally.of(jobs, workers)
    kept = c.tally
    assert +kept.jobs == +scan.jobs  # unary +: without the zero counts
    assert +kept.workers == +scan.workers
    assert (kept.delay_counts, kept.delay_n) == (scan.delay_counts, scan.delay_n)
    assert abs(kept.delay_sum - scan.delay_sum) < 1e-6


async def test_the_counters_follow_every_step_and_a_restart(make: Make) -> None:
    h = make()
    c = h.controller
    job, worker, task = await h.assigned()
    await same_as_a_scan(c)
    attached = await h.submit(reuse=True)  # attached to the job under way
    other = await h.submit()
    await h.finish(worker, task)  # completes job and attached
    await same_as_a_scan(c)
    assert c.tally.jobs["Completed"] == 2 and c.tally.delay_n == 1  # the reused one apart
    await c.cancel(other.id)
    again = await h.submit(reuse=True)  # served at once with job's output
    await c.reconcile()
    await same_as_a_scan(c)
    assert c.jobs[again.id].reused_from == job.id and c.jobs[attached.id].state.value == "Completed"
    waiting = await h.submit()
    await c.reconcile()
    h.crash()

    h2 = make(db=h.db, clock=h.clock)
    await h2.controller.recover()
    await same_as_a_scan(h2.controller)
    assert h2.controller.tally.jobs["Waiting"] == 1 and waiting.id in h2.controller.jobs
    await h2.controller.reconcile()
    await same_as_a_scan(h2.controller)
