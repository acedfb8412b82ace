"""A step's transaction (``core/txn.py``) around the core: sealed, a step is hidden until it
is stored; committed, it takes effect; one that raises halfway is undone."""

from __future__ import annotations

import copy

import pytest

from dacirco.core.machine import Core
from dacirco.core.stimuli import Cancel, Decide, Registered, Submitted
from dacirco.core.txn import Txn
from dacirco.domain import JobState, WorkerState
from dacirco.policies.base import ClusterView, Decisions, StartWorker, StopWorker
from tests.unit.test_core import codes, job, launched, new_core


def test_a_sealed_step_leaves_memory_as_before_until_committed(cores: list[Core]) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    (launch,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 1.0)
    before = copy.deepcopy((core.state.jobs, core.state.workers, core.state.tasks))
    waiting = dict(core.state.waiting)
    txn = Txn()
    step = core.handle(Decide(), 2.0, txn)
    assert codes(step) == ["EV3"] and set(txn.jobs) == {"j1"} and len(txn.tasks) == 1
    txn.seal()
    core.state.invalidate()
    assert (core.state.jobs, core.state.workers, core.state.tasks) == before
    assert core.state.waiting == waiting
    assert core.state.view(2.0).waiting[0].id == "j1"
    txn.commit()
    core.state.invalidate()
    assert core.state.jobs["j1"].state is JobState.STARTED and not core.state.waiting
    assert core.state.view(2.0).busy[0].job_id == "j1"


def test_a_step_that_raises_halfway_is_rolled_back(cores: list[Core]) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    (a,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(a.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Submitted(job(2)), 1.0)
    state = core.state
    before = copy.deepcopy((state.jobs, state.workers, dict(state.used), state.counters))

    class Broken:
        """Stops the idle worker and starts one; asked again (after the stop), it fails."""

        name = "broken"

        def decide(self, view: ClusterView) -> Decisions:
            if not view.idle:
                raise RuntimeError("policy bug")
            return Decisions(stop=(StopWorker(a.worker_id),), start=(StartWorker("small"),))

    core.policy = Broken()
    txn = Txn()
    with pytest.raises(RuntimeError, match="policy bug"):
        core.handle(Decide(), 2.0, txn)
    assert state.workers[a.worker_id].state is WorkerState.STOPPED  # half done...
    txn.rollback()
    state.invalidate()
    after = (state.jobs, state.workers, dict(state.used), state.counters)
    assert after == before  # ... and undone
    assert list(state.alive) == [a.worker_id]
    assert [w.state for w in state.view(2.0).workers] == [WorkerState.IDLE]


def test_a_sealed_step_hides_what_it_made_and_what_it_changed_until_stored(
    cores: list[Core],
) -> None:
    """A job the step made is kept without images (nothing else can reach it); one it changed
    is put back as it was. ``commit`` brings both; a failed write (no commit) leaves neither."""
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    state = core.state
    for stored in (False, True):
        txn = Txn()
        core.handle(Submitted(job(2)), 1.0, txn)
        core.handle(Cancel("j1", "by the client"), 1.0, txn)
        assert txn.before(state.jobs["j2"]) is None and txn.before(state.jobs["j1"]) is not None
        j2 = state.jobs["j2"]
        txn.seal()
        assert "j2" not in state.jobs and "j2" not in state.waiting
        assert state.jobs["j1"].state is JobState.WAITING and list(state.waiting) == ["j1"]
        assert set(txn.jobs) == {"j1", "j2"}  # both are written
        if stored:
            txn.commit()
            assert state.jobs["j2"] is j2 and list(state.waiting) == ["j2"]
            assert state.jobs["j1"].state is JobState.CANCELED
