"""A job's deadline and its predicted transcode time: one rule for every policy that needs one.

DaCirco's requests carry no deadline and no delay target. The policies taken from the
literature (``covt``, ``cvss``, ``mpc``) need one, so it is derived here, the same way for all:

    deadline = arrival + WAIT_ALLOWANCE + SLACK_FACTOR x (the job's predicted transcode
               seconds on the reference flavor)

with the predicted seconds = its work (``policies.work``) x ``REFERENCE_SECONDS_PER_WORK``.
A job may wait ``WAIT_ALLOWANCE`` seconds (about one VM boot and a transfer or two) and then
take twice as long as it would on a ``small`` worker. The reference speed is a constant, not
a measurement: a job's deadline is a property of the request, fixed at its arrival, the same
whatever the cluster did since (``small`` workers took 0.32 to 0.34 s per unit of work in
simulated runs, from assignment to uploaded output; see docs/peers/literature.md).

A part of a split job (``JobView.part``) has the deadline of its own work (a chunk its share,
a merge none: ``WAIT_ALLOWANCE`` after the job's arrival), earlier than its job's.

``seconds_per_work`` is how long a unit of work takes on a flavor *now*: measured
(``view.stats.seconds_per_work``), else extrapolated from a measured flavor by its cores
(``SCALING``: ffmpeg does not use more cores linearly), else from the reference speed.
"""

from __future__ import annotations

from dacirco.domain import DEFAULT_FLAVOR, FLAVORS
from dacirco.policies.base import ClusterView, JobView
from dacirco.policies.work import work_units

REFERENCE_FLAVOR = DEFAULT_FLAVOR
REFERENCE_SECONDS_PER_WORK = 0.33  # seconds per unit of work on REFERENCE_FLAVOR
WAIT_ALLOWANCE = 30.0  # seconds a job may wait for a worker
SLACK_FACTOR = 2.0  # times its reference transcode time a job may take
SCALING = 0.5  # seconds per work ~ cores ** -SCALING (tiny / small: 0.47 / 0.33 measured)


def job_work(job: JobView) -> float:
    """The predicted work of a waiting job or part (a merge is a stream copy: none)."""
    if job.part == "merge":
        return 0.0
    return work_units(job.input_duration, job.input_pixel_rate, job.speed)


def reference_seconds(work: float) -> float:
    return work * REFERENCE_SECONDS_PER_WORK


def deadline(job: JobView) -> float:
    """When the job should be done (an absolute time on the view's clock)."""
    return job.received_at + WAIT_ALLOWANCE + SLACK_FACTOR * reference_seconds(job_work(job))


def seconds_per_work(view: ClusterView, flavor: str) -> float:
    """Seconds a unit of work takes on ``flavor``: measured, else extrapolated."""
    measured = view.stats.seconds_per_work
    got = measured.get(flavor)
    if got is not None:
        return got
    cpus = FLAVORS[flavor].cpus
    for name in sorted(measured):  # sorted: the same answer whatever the mapping's order
        if name in FLAVORS:
            return measured[name] * (FLAVORS[name].cpus / cpus) ** SCALING
    ref = FLAVORS[REFERENCE_FLAVOR].cpus
    return REFERENCE_SECONDS_PER_WORK * (ref / cpus) ** SCALING


def predicted_seconds(view: ClusterView, job: JobView, flavor: str) -> float:
    """How long ``job`` would take on a worker of ``flavor``, assignment to upload."""
    return job_work(job) * seconds_per_work(view, flavor)
