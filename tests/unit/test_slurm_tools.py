"""What the SLURM runtime reads from SLURM's commands, and how it sorts sbatch's refusals
(the messages are SLURM 22.05's own, as sbatch prints them)."""

from __future__ import annotations

import pytest

from dacirco.domain import Node
from dacirco.runtimes.slurm_tools import (
    exit_code,
    parse_job_id,
    parse_sinfo,
    parse_squeue,
    refused_for_now,
    sbatch_error,
    time_limit,
)

SINFO = """\
vm|debug*|up|2|24105|idle
vm|closed|drain|2|24105|idle
n2|debug*|up|8|64000|mixed
n3|debug*|up|8|64000|down*
n4|debug*|up|8|64000|drained
n5|debug*|up|8|64000|idle*
n6|gpu|up|16|128000|allocated
"""


def test_sinfo_gives_each_partition_and_its_nodes_that_take_jobs() -> None:
    parts = parse_sinfo(SINFO)
    assert set(parts) == {"debug", "closed", "gpu"}
    debug = parts["debug"]
    assert debug.default and debug.up
    assert debug.nodes == (Node("n2", 8, 62.5), Node("vm", 2, 23.5))  # down, drained, silent: out
    assert not parts["closed"].default and not parts["closed"].up
    assert parts["gpu"].nodes == (Node("n6", 16, 125.0),)


def test_squeue_and_sbatch_output() -> None:
    assert parse_squeue("12|PENDING|Resources\n13|RUNNING|None\nnoise\n") == {
        "12": ("PENDING", "Resources"),
        "13": ("RUNNING", "None"),
    }
    assert parse_job_id("42\n") == "42" and parse_job_id("42;cluster\n") == "42"
    assert parse_job_id("") is None


def test_exit_code_in_words() -> None:
    assert exit_code("JobId=3 JobState=FAILED ExitCode=1:0 RunTime=0") == "exit code 1"
    assert exit_code("JobId=3 JobState=CANCELLED ExitCode=0:15") == "killed by signal 15"
    assert exit_code("JobId=3") is None


@pytest.mark.parametrize(
    ("stderr", "for_now"),
    [
        ("sbatch: error: Batch job submission failed: Required partition not available "
         "(inactive or drain)", True),
        ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
         "(job submit limit, user's size and/or time limits)", True),
        ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission "
         "failed: Job violates accounting/QOS policy", True),
        ("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
         "(connect failure)", True),
        ("sbatch did not answer within 30 s", True),
        ("sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job "
         "submission failed: Invalid partition name specified", False),
        ("sbatch: error: Batch job submission failed: Invalid account or account/partition "
         "combination specified", False),
        ("sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job "
         "submission failed: Requested node configuration is not available", False),
    ],
)  # fmt: skip
def test_a_refusal_is_for_now_or_for_good(stderr: str, for_now: bool) -> None:
    assert refused_for_now(stderr) is for_now


def test_sbatchs_complaint_on_one_line() -> None:
    stderr = (
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    assert sbatch_error(stderr) == (
        "invalid partition specified: nope; "
        "Batch job submission failed: Invalid partition name specified"
    )
    assert sbatch_error("") == "no reason given"
    assert len(sbatch_error("sbatch: error: " + "x" * 1000)) == 300


def test_time_limit_as_sbatch_wants_it() -> None:
    assert time_limit(600) == "0-00:10:00"
    assert time_limit(90061.2) == "1-01:02:00"  # whole minutes, rounded up
    assert time_limit(0.1) == "0-00:01:00"
