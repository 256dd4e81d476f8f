"""A helper of the alert tests: store an alert with a first mail to one address."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.mail import compose_notice
from alerts.outbox import mail_deliveries
from storage import NewAlert, NewDelivery, NewMessage, Store

SENDER = "烽火预警 <fenghuo@localhost>"


def add_stored_alert(
    store: Store,
    key: str,
    *,
    subject: str,
    created: datetime,
    deadline: datetime | None = None,
    level: str = "critical",
    recipients: tuple[str, ...] = ("cr@qicheng.example",),
    channel: str = "eml",
    robots: tuple[tuple[str, str], ...] = (),
    card: Mapping[str, Any] | None = None,
) -> int:
    """Store an alert created at ``created`` with its first message; return its id."""
    composed = compose_notice(
        key,
        subject,
        "各位好，\n刹车失灵。\n",
        sender=SENDER,
        recipients=recipients,
        now=created,
    )
    deliveries = mail_deliveries(channel, recipients)
    deliveries += tuple(NewDelivery(kind, name) for kind, name in robots)
    message = NewMessage(
        reason="new",
        message_id=composed.message_id,
        subject=composed.subject,
        message=composed.message,
        deliveries=deliveries,
        card=card,
    )
    alert = NewAlert(None, key, level, "complaint", subject, message, deadline)
    [alert_id] = store.add_alerts([alert], now=created)
    return alert_id
