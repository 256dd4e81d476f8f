"""Fixtures of the alert tests: loopback chat robots and a loopback SMTP server."""

from __future__ import annotations

import pytest
from fake_robots import FakeRobot
from smtp_server import MailServer, free_port, start_server


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


@pytest.fixture
def mail_server():
    """Start a loopback SMTP server; yield its handler and port."""
    handler = MailServer()
    controller = start_server(handler, free_port())
    yield handler, controller.port
    controller.stop()
