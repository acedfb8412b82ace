"""Scenarios: lists of timed transcoding requests, their files, generators and player."""

from dacirco.scenario.model import Request, ScenarioError, read_scenario, write_scenario

__all__ = ["Request", "ScenarioError", "read_scenario", "write_scenario"]
