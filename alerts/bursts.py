"""Alerts for bursts: a problem, or the brand's negative share, rising above
its own baseline.

A burst is about many posts, not one, so its alert is a plain mail. It goes
to the medium level's recipients and the departments of the problem's root
cause, with the detector's reason and a link to the problem on the review
page. Quiet hours hold it, while the hourly cap per recipient does not
count it. Chat robots get no burst card.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from config import Config
from items import Signal
from storage import NewAlert

from .mail import compose_notice, header_safe
from .outbox import mail_message
from .policy import after_quiet, recipients

BURST_LEVEL = "medium"
LABEL_CHARS = 60


def burst_alert(
    signal: Signal,
    config: Config,
    now: datetime,
    *,
    label: str | None = None,
    root_cause: str | None = None,
) -> NewAlert | None:
    """Return the alert of a burst signal, or None when bursts do not alert or
    the alert would reach no one.

    The alert's key is the signal's, so a burst found again by a later run
    stores nothing twice.
    """
    settings = config.alerts
    if signal.kind != "burst" or "burst" not in settings.signals:
        return None
    _, addresses = recipients(BURST_LEVEL, root_cause, settings)
    if not addresses:
        return None
    if signal.problem_id is None:
        subject = "[烽火·中等] 品牌负面占比突增"
        link = settings.review_url.rstrip("/") + "/"
    else:
        name = header_safe(label or f"问题 {signal.problem_id}", LABEL_CHARS)
        subject = f"[烽火·中等] 问题突发 | {name}"
        link = f"{settings.review_url.rstrip('/')}/problems/{signal.problem_id}"
    body = (
        f"{header_safe(signal.reason, 500)}\n\n"
        f"开始时间：{signal.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"在审核页查看：{link}\n"
    )
    composed = compose_notice(
        signal.key,
        subject,
        body,
        sender=settings.sender,
        recipients=addresses,
        now=now,
    )
    message = mail_message(composed, settings, addresses)
    # Quiet hours hold a burst alert as they hold any alert below critical.
    send_at = after_quiet(now, BURST_LEVEL, settings, config.timezone)
    deliveries = tuple(replace(d, not_before=send_at) for d in message.deliveries)
    return NewAlert(
        post_id=None,
        dedup_key=signal.key,
        level=BURST_LEVEL,
        kind="burst",
        subject=composed.subject,
        message=replace(message, deliveries=deliveries),
    )
