"""A discrete-event simulator that drives the very same policy objects as the real controller.

``engine`` (clock, event heap), ``cluster`` (the simulated controller, runtime and workers:
views built and decisions checked as the controller does), ``models`` (boot, transcode and
transfer times, with where their numbers come from), ``workload`` (jobs from the scenario
generators and the catalog), ``bound`` (clairvoyant lower bounds), ``compare`` and ``pareto``
(policies x workloads x seeds), ``eventlog`` (the real event-log format). See docs/simulator.md.
"""
