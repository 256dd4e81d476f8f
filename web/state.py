"""The objects that every view shares, kept on the Flask application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from config import Config
from storage import Store
from storage.accounts import Accounts
from storage.queue import ReviewQueue

EXTENSION = "fenghuo"


@dataclass(frozen=True)
class WebState:
    """The config, queries and clock that the views share.

    ``now`` returns the current time as an aware datetime.
    """

    config: Config
    store: Store
    accounts: Accounts
    queue: ReviewQueue
    zone: ZoneInfo
    now: Callable[[], datetime]


def state() -> WebState:
    """Return the shared state of the application handling this request."""
    return current_app.extensions[EXTENSION]
