"""Escalation: notify the next tier of departments of unacknowledged alerts.

:func:`escalate_due` runs every minute in the service and once per ``once``
run. It reads the open alerts past their deadline, gets from
:func:`alerts.policy.escalation_due` the tier to tell, and stores one
escalation message per tier in the alert's mail thread. The store raises the
alert's ``escalation_tier`` in the same transaction, and only from the tier
that was read, so a tier hears once even when two jobs run the check or one
stops halfway. The outbox delivers the messages like any other.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts import policy
from alerts.cards import card_from_json, card_to_json
from alerts.mail import ESCALATION, Thread, compose_reply, reply_references
from alerts.outbox import mail_channel, mail_deliveries
from alerts.robots import robots_for_level
from config import Alerts, Config
from items import LEVEL_NAMES_ZH
from storage import AlertDetail, NewDelivery, NewMessage, Store

logger = logging.getLogger(__name__)


def ack_secret(settings: Alerts) -> str:
    """Return the secret that signs acknowledgement links, or "" when unset."""
    return os.environ.get(settings.ack_secret_env, "")


def escalate_due(store: Store, config: Config, now: datetime) -> list[int]:
    """Store the escalation messages due at ``now``; return their alert ids.

    An alert escalates when it is open, its level has escalation tiers, and
    :func:`alerts.policy.escalation_due` names a tier. An alert that was
    acknowledged, or escalated by another job, since it was read is skipped.
    """
    settings = config.alerts
    tiers_by_level = {
        level: len(tiers) for level, tiers in settings.escalation.items() if tiers
    }
    escalated = []
    for alert in store.overdue_alerts(now, tiers_by_level):
        tier = policy.escalation_due(
            alert.level,
            alert.created_at,
            alert.deadline,
            alert.escalation_tier,
            now,
            settings,
        )
        detail = store.get_alert(alert.id) if tier is not None else None
        if detail is None or not detail.messages:
            continue
        message = escalation_message(detail, tier, config, now)
        if store.escalate_alert(alert.id, tier, message, now=now) is None:
            logger.info(
                "escalation skipped, alert changed meanwhile alert=%s tier=%s",
                alert.id,
                tier,
            )
            continue
        escalated.append(alert.id)
        logger.warning(
            "alert escalated alert=%s level=%s tier=%s deliveries=%s",
            alert.id,
            alert.level,
            tier + 1,
            len(message.deliveries),
        )
        if not message.deliveries:
            logger.error(
                "escalation tier has no recipients alert=%s tier=%s",
                alert.id,
                tier + 1,
            )
    return escalated


def escalation_message(
    detail: AlertDetail, tier: int, config: Config, now: datetime
) -> NewMessage:
    """Build the message that notifies escalation tier ``tier`` (from 0) of an alert.

    It replies to the alert's latest message, goes to the tier's departments
    by mail and to the robots that take the alert's level, and carries the
    acknowledgement link when the review page's address and the secret are set.
    """
    settings = config.alerts
    alert = detail.alert
    first, last = detail.messages[0], detail.messages[-1]
    departments = settings.escalation[alert.level][tier]
    addresses = policy.distinct_addresses(
        [a for name in departments for a in settings.departments[name].recipients]
    )
    thread = Thread(
        key=f"{alert.dedup_key}#escalation-{tier + 1}",
        reasons=(ESCALATION,),
        parent=last.message_id,
        references=reply_references([m.message_id for m in detail.messages]),
        subject=first.subject,
        ack_url=policy.ack_url(settings.review_url, ack_secret(settings), alert.id),
    )
    names = [settings.departments[d].name for d in departments]
    body = _body(detail, tier, names, config.timezone)
    composed = compose_reply(
        thread,
        body + _links(detail, thread, settings),
        sender=settings.sender,
        recipients=addresses,
        now=now,
    )
    deliveries = mail_deliveries(mail_channel(settings), addresses)
    card = _card(first.card)
    if card is not None:
        deliveries += tuple(
            NewDelivery(robot.kind, robot.name)
            for robot in robots_for_level(settings.robots, alert.level)
        )
    return NewMessage(
        reason="escalation",
        message_id=composed.message_id,
        subject=composed.subject,
        message=composed.message,
        deliveries=deliveries,
        in_reply_to=thread.parent,
        references=" ".join(thread.references),
        card=card,
    )


def _body(detail: AlertDetail, tier: int, departments: list[str], timezone: str) -> str:
    alert = detail.alert
    zone = ZoneInfo(timezone)
    lines = [
        "各位好，",
        "",
        f"这条预警超过首次响应时限仍无人确认，按升级规则转给您（第 {tier + 1} 级："
        f"{'、'.join(departments)}）。",
        "",
        f"级别：{LEVEL_NAMES_ZH.get(alert.level, alert.level)}",
        f"预警：{alert.subject}",
    ]
    if alert.deadline is not None:
        local = alert.deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        lines.append(f"首次响应时限：{local}（{zone.key}）")
    return "\n".join(lines) + "\n"


def _links(detail: AlertDetail, thread: Thread, settings: Alerts) -> str:
    lines = [""]
    review_url = settings.review_url.rstrip("/")
    if review_url and detail.alert.post_id is not None:
        lines.append(f"在烽火中处理：{review_url}/posts/{detail.alert.post_id}")
    if thread.ack_url:
        lines.append(f"确认收到（停止升级）：{thread.ack_url}")
    else:
        lines.append(
            "确认收到：python pipeline.py alerts ack "
            f"{detail.alert.id}（未配置确认链接）"
        )
    lines += ["", "—— 烽火预警"]
    return "\n".join(lines) + "\n"


def _card(stored: object) -> dict | None:
    """Return the first message's robot card marked as an escalation, or None."""
    if not stored:
        return None
    try:
        card = card_from_json(stored)
    except ValueError:
        return None
    return card_to_json(replace(card, title="【升级·无人确认】" + card.title))
