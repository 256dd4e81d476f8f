"""The audit trail of the review page: who did what, when, to which subject."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import g
from sqlalchemy import Connection

from storage.accounts import insert_audit

from .state import state

logger = logging.getLogger(__name__)


def record(
    action: str,
    subject: tuple[str, str | int] | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append an action of the logged-in user to the audit log; return its id.

    ``subject`` is a (type, id) pair such as ``("post", 42)``, or None.
    ``details`` must be JSON-ready. Outside a session the actor is None.
    The entry is written in a transaction of its own.
    """
    user = g.get("user")
    actor = None if user is None else user.name
    shared = state()
    entry_id = shared.accounts.add_audit(
        actor, action, subject, details or {}, shared.now()
    )
    logger.info("audit entry added id=%s action=%s", entry_id, action)
    return entry_id


def record_in(
    connection: Connection,
    action: str,
    subject: tuple[str, str | int] | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append an action of the logged-in user to the audit log inside the
    transaction of ``connection``; return its id.

    The entry commits with the change it records, or neither is stored.
    """
    user = g.get("user")
    actor = None if user is None else user.name
    return insert_audit(
        connection, actor, action, subject, details or {}, state().now()
    )
