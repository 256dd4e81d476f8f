"""Fixtures of the alert tests: loopback chat robots."""

from __future__ import annotations

import pytest
from fake_robots import FakeRobot


@pytest.fixture
def robots():
    """Start loopback robots of a kind, each stopped after the test."""
    started: list[FakeRobot] = []

    def start(kind: str, **options) -> FakeRobot:
        robot = FakeRobot(kind, **options).start()
        started.append(robot)
        return robot

    yield start
    for robot in started:
        robot.stop()
