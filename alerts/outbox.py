"""Deliver alerts that are already committed to the database.

An alert is stored, with its whole message, before any attempt to send it.
The functions here take pending alerts, hand each to a transport and record
the outcome, so an outage delays alerts and a crash loses none.
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from alerts.mail import send_smtp, write_eml
from config import Smtp

logger = logging.getLogger(__name__)


class Transport(Protocol):
    channel: str
    target: str

    def send(self, alert: Any) -> str:
        """Deliver one alert record and return a short detail for the log."""
        ...


class EmlTransport:
    """Write each alert as an .eml file into the outbox folder."""

    channel = "eml"

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.target = str(outbox)

    def send(self, alert: Any) -> str:
        name = f"{alert.created_at:%Y%m%d-%H%M%S}-{alert.level}-{alert.id}"
        return str(write_eml(alert.message, self.outbox, name))


class SmtpTransport:
    """Send each alert through an SMTP server; the password comes from the environment."""

    channel = "smtp"

    def __init__(self, settings: Smtp) -> None:
        self.settings = settings
        self.target = f"{settings.host}:{settings.port}"
        self.password = os.environ.get(settings.password_env)

    def send(self, alert: Any) -> str:
        send_smtp(alert.message, list(alert.recipients), self.settings, self.password)
        return self.target


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def deliver_pending(
    store: Any,
    transport: Transport,
    *,
    limit: int = 500,
    stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Deliver up to ``limit`` pending alerts and record every attempt.

    ``stop`` is called before each alert, so a stopping service does not wait
    for a whole batch against a slow server. What is left stays pending.
    """
    report = DeliveryReport()
    for alert in store.pending_alerts(limit=limit):
        if stop():
            break
        try:
            detail = transport.send(alert)
        except (OSError, smtplib.SMTPException) as exc:
            report.failed += 1
            logger.warning(
                "alert delivery failed alert=%s channel=%s error=%s",
                alert.id,
                transport.channel,
                exc,
            )
            store.record_delivery(
                alert.id,
                channel=transport.channel,
                target=transport.target,
                ok=False,
                detail=str(exc)[:500],
            )
            continue
        store.record_delivery(
            alert.id,
            channel=transport.channel,
            target=transport.target,
            ok=True,
            detail=detail,
        )
        report.sent += 1
        logger.info(
            "alert delivered alert=%s level=%s channel=%s",
            alert.id,
            alert.level,
            transport.channel,
        )
    return report
