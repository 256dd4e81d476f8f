"""The queries behind the alert methods of :class:`storage.Store`.

An alert has messages, the first and its updates, and each message has one
delivery per channel and recipient. Every function runs in the caller's
transaction and raises before writing when an argument is invalid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, func, insert, or_, select, update

from . import rows
from .records import (
    AlertDetail,
    AlertRecord,
    AlertSummary,
    AlertUpdate,
    AttemptOutcome,
    Claimed,
    DeliveryRecord,
    IncidentFacts,
    KnownAlert,
    NewAlert,
    NewMessage,
    PendingMessage,
)
from .rows import LOOKUP_CHUNK, chunks
from .tables import (
    DELIVERY_CHANNELS,
    MAIL_CHANNELS,
    ROBOT_CHANNELS,
    alert_deliveries,
    alert_messages,
    alerts,
    delivery_attempts,
)

# Characters of a delivery error kept in the database.
MAX_ERROR_LENGTH = 2000
MAX_REASON_LENGTH = 64
MAX_MESSAGE_ID_LENGTH = 255
MAX_RECIPIENT_LENGTH = 320
OUTCOME_STATUSES = ("sent", "pending", "failed")
UNCONFIRMED_ERROR = (
    "stopped between sending and recording the outcome; the message may have "
    "arrived, so it is not sent again automatically"
)
# Due deliveries read per message claimed, to find the next messages. A
# message with more due deliveries than this still counts as one.
CLAIM_LOOKAHEAD = 50


def insert_alerts(
    connection: Connection,
    insert_for: Callable[[Any], Any],
    new_alerts: Sequence[NewAlert],
    now: datetime,
) -> list[int | None]:
    """Insert alerts whose ``dedup_key`` is new, each with its first message.

    ``insert_for`` is the dialect's insert construct, which has ON CONFLICT.
    Returns the new alert id in the position of each alert, None where the
    key was already stored or appeared earlier in the batch.
    """
    positions: dict[str, int] = {}
    for index, alert in enumerate(new_alerts):
        positions.setdefault(alert.dedup_key, index)
    result: list[int | None] = [None] * len(new_alerts)
    if not positions:
        return result
    for index in positions.values():
        message = new_alerts[index].message
        if isinstance(message, NewMessage):
            check_message(message)

    alert_rows = [_alert_row(new_alerts[i], now) for i in positions.values()]
    statement = (
        insert_for(alerts)
        .on_conflict_do_nothing(index_elements=[alerts.c.dedup_key])
        .returning(alerts.c.id, alerts.c.dedup_key)
    )
    for row in connection.execute(statement, alert_rows):
        result[positions[row.dedup_key]] = row.id
    for index, alert_id in enumerate(result):
        if alert_id is None:
            continue
        message = new_alerts[index].message
        if not isinstance(message, NewMessage):
            message = message(alert_id)
            check_message(message)
        insert_message(connection, alert_id, 0, message, now)
    return result


def add_message(
    connection: Connection, alert_id: int, message: NewMessage, now: datetime
) -> int:
    """Add a message after the alert's last one; return the message's id.

    The alert's row is locked first (on PostgreSQL; SQLite has one writer), so
    that two writers cannot take the same sequence number.
    """
    check_message(message)
    locked = connection.execute(
        select(alerts.c.id).where(alerts.c.id == alert_id).with_for_update()
    ).first()
    if locked is None:
        raise LookupError(f"alert {alert_id} not found")
    last = connection.execute(
        select(func.max(alert_messages.c.sequence)).where(
            alert_messages.c.alert_id == alert_id
        )
    ).scalar()
    sequence = 0 if last is None else last + 1
    message_id = insert_message(connection, alert_id, sequence, message, now)
    connection.execute(
        update(alerts).where(alerts.c.id == alert_id).values(updated_at=now)
    )
    return message_id


def check_message(message: NewMessage) -> None:
    """Raise ValueError for a message that the tables would reject."""
    if not message.reason or len(message.reason) > MAX_REASON_LENGTH:
        raise ValueError(
            f"invalid message reason {message.reason!r}; expected 1 to "
            f"{MAX_REASON_LENGTH} characters, such as 'new' or 'escalation'"
        )
    if not message.message_id or len(message.message_id) > MAX_MESSAGE_ID_LENGTH:
        raise ValueError(
            f"invalid Message-ID {message.message_id!r}; expected 1 to "
            f"{MAX_MESSAGE_ID_LENGTH} characters"
        )
    for delivery in message.deliveries:
        if delivery.channel not in DELIVERY_CHANNELS:
            raise ValueError(
                f"unknown delivery channel {delivery.channel!r}; "
                f"expected one of {', '.join(DELIVERY_CHANNELS)}"
            )
        if not delivery.recipient or len(delivery.recipient) > MAX_RECIPIENT_LENGTH:
            raise ValueError(
                f"invalid recipient {delivery.recipient!r} on channel "
                f"{delivery.channel}; expected 1 to {MAX_RECIPIENT_LENGTH} characters"
            )


def insert_message(
    connection: Connection,
    alert_id: int,
    sequence: int,
    message: NewMessage,
    now: datetime,
) -> int:
    """Insert a message and its deliveries, due at ``now``; return its id."""
    statement = (
        insert(alert_messages)
        .values(
            alert_id=alert_id,
            sequence=sequence,
            reason=message.reason,
            message_id=message.message_id,
            in_reply_to=message.in_reply_to,
            references=message.references,
            subject=message.subject,
            message=message.message,
            card=None if message.card is None else dict(message.card),
            created_at=now,
        )
        .returning(alert_messages.c.id)
    )
    message_row_id = connection.execute(statement).scalar_one()

    _insert_deliveries(connection, message_row_id, message, now)
    return message_row_id


def _insert_deliveries(
    connection: Connection, message_row_id: int, message: NewMessage, now: datetime
) -> None:
    """Insert a message's deliveries, each due at its ``not_before`` or ``now``."""
    due: dict[tuple[str, str], datetime] = {}
    for delivery in message.deliveries:
        moment = now if delivery.not_before is None else delivery.not_before
        due.setdefault((delivery.channel, delivery.recipient), moment)
    delivery_rows = [
        {
            "alert_message_id": message_row_id,
            "channel": channel,
            "recipient": recipient,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
            "created_at": now,
        }
        for (channel, recipient), moment in due.items()
    ]
    if delivery_rows:
        connection.execute(insert(alert_deliveries), delivery_rows)


def _alert_row(alert: NewAlert, now: datetime) -> dict[str, Any]:
    row = {
        "post_id": alert.post_id,
        "dedup_key": alert.dedup_key,
        "level": alert.level,
        "kind": alert.kind,
        "subject": alert.subject,
        "status": "open",
        "deadline": alert.deadline,
        "escalation_tier": 0,
        "created_at": now,
        "updated_at": now,
        "incident_id": None,
        "root_cause": None,
        "reach": 0,
        "owners": 0,
        "viral": False,
        "last_message_at": now,
    }
    if alert.state is not None:
        row.update(_facts_row(alert.state))
    return row


def _facts_row(facts: IncidentFacts) -> dict[str, Any]:
    return {
        "incident_id": facts.incident_id,
        "root_cause": facts.root_cause,
        "reach": facts.reach,
        "owners": facts.owners,
        "viral": facts.viral,
        "last_message_at": facts.last_message_at,
    }


class StaleAlertState(Exception):
    """An alert changed between planning an update and saving it: the message
    it was to replace was claimed, or another message followed the one it
    replies to. The caller plans the update again."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} changed while its update was planned")
        self.alert_id = alert_id


def apply_updates(
    connection: Connection, updates: Sequence[AlertUpdate], now: datetime
) -> int:
    """Add or replace each update's message, and store the alert's new state;
    return how many messages were added (the others replaced one).

    A message to replace must still be untouched: every delivery pending and
    never attempted. Raises :class:`StaleAlertState` when the outbox claimed
    it meanwhile, or when the alert's last message is no longer the one the
    update follows, so that the whole save rolls back.
    """
    for update_ in updates:
        check_message(update_.message)
    added = 0
    for update_ in updates:
        if _last_message_id(connection, update_) != update_.follows:
            raise StaleAlertState(update_.alert_id)
        if update_.replaces is None:
            add_message(connection, update_.alert_id, update_.message, now)
            added += 1
        elif not _replace_message(connection, update_.replaces, update_.message, now):
            raise StaleAlertState(update_.alert_id)
        values = {
            "level": update_.level,
            "kind": update_.kind,
            "deadline": update_.deadline,
            "updated_at": now,
            **_facts_row(update_.state),
        }
        connection.execute(
            update(alerts).where(alerts.c.id == update_.alert_id).values(**values)
        )
    return added


def _last_message_id(connection: Connection, update_: AlertUpdate) -> str | None:
    """Return the Message-ID of the alert's last message, the replaced one left out."""
    statement = (
        select(alert_messages.c.message_id)
        .where(alert_messages.c.alert_id == update_.alert_id)
        .order_by(alert_messages.c.sequence.desc())
        .limit(1)
    )
    if update_.replaces is not None:
        statement = statement.where(alert_messages.c.id != update_.replaces)
    return connection.execute(statement).scalar()


def _replace_message(
    connection: Connection, message_row_id: int, message: NewMessage, now: datetime
) -> bool:
    """Put ``message`` in place of a stored message none of whose deliveries
    was attempted; return False, changing nothing, when one was."""
    deliveries = alert_deliveries.c
    # The rows are locked first: on PostgreSQL an outbox claim still open
    # makes this wait, and its rows are then read as it left them.
    current = connection.execute(
        select(deliveries.status, deliveries.attempts)
        .where(deliveries.alert_message_id == message_row_id)
        .with_for_update()
    ).all()
    if any(status != "pending" or attempts > 0 for status, attempts in current):
        return False
    connection.execute(
        alert_deliveries.delete().where(deliveries.alert_message_id == message_row_id)
    )
    connection.execute(
        update(alert_messages)
        .where(alert_messages.c.id == message_row_id)
        .values(
            reason=message.reason,
            message_id=message.message_id,
            subject=message.subject,
            message=message.message,
            in_reply_to=message.in_reply_to,
            references=message.references,
            card=None if message.card is None else dict(message.card),
        )
    )
    _insert_deliveries(connection, message_row_id, message, now)
    return True


def known_alerts(
    connection: Connection, keys: Collection[str]
) -> dict[str, KnownAlert]:
    """Return the stored alerts under ``keys``, with their thread and the
    last message when it is still untouched."""
    found: dict[str, KnownAlert] = {}
    for chunk in chunks(sorted(keys), LOOKUP_CHUNK):
        alert_rows = connection.execute(
            select(alerts).where(alerts.c.dedup_key.in_(chunk))
        ).mappings()
        records = {row["id"]: rows.alert_from_row(row) for row in alert_rows}
        if not records:
            continue
        messages = connection.execute(
            select(
                alert_messages.c.id,
                alert_messages.c.alert_id,
                alert_messages.c.sequence,
                alert_messages.c.reason,
                alert_messages.c.message_id,
                alert_messages.c.subject,
            )
            .where(alert_messages.c.alert_id.in_(list(records)))
            .order_by(alert_messages.c.alert_id, alert_messages.c.sequence)
        ).all()
        by_alert: dict[int, list] = defaultdict(list)
        for message in messages:
            by_alert[message.alert_id].append(message)
        untouched = _untouched_messages(
            connection, [thread[-1].id for thread in by_alert.values()]
        )
        for alert_id, record in records.items():
            thread = by_alert.get(alert_id, [])
            pending = None
            if thread and thread[-1].id in untouched:
                last = thread[-1]
                reasons = update_reasons_of(last.reason)
                if reasons is not None:
                    pending = PendingMessage(
                        id=last.id,
                        sequence=last.sequence,
                        message_id=last.message_id,
                        reasons=reasons,
                        send_at=min(untouched[last.id].values()),
                        due=untouched[last.id],
                    )
            found[record.dedup_key] = KnownAlert(
                alert=record,
                message_ids=tuple(m.message_id for m in thread),
                first_subject=thread[0].subject if thread else record.subject,
                pending=pending,
            )
    return found


# The stored reason of an update message: this prefix and the update reasons
# joined by "+", short enough for the reason column.
UPDATE_PREFIX = "update:"


def update_reasons_of(reason: str) -> tuple[str, ...] | None:
    """Return the update reasons a stored message reason names: none for the
    first message, None for a message that is neither (an escalation, a resend)."""
    if reason == "new":
        return ()
    if reason.startswith(UPDATE_PREFIX):
        return tuple(r for r in reason[len(UPDATE_PREFIX) :].split("+") if r)
    return None


def _untouched_messages(
    connection: Connection, message_row_ids: Sequence[int]
) -> dict[int, dict[str, datetime]]:
    """Return, for each of the messages whose deliveries are all pending and
    never attempted, when each recipient's delivery is due (recipients in
    lower case)."""
    deliveries = alert_deliveries.c
    due: dict[int, dict[str, datetime]] = defaultdict(dict)
    touched: set[int] = set()
    for chunk in chunks(list(message_row_ids), LOOKUP_CHUNK):
        statement = select(
            deliveries.alert_message_id,
            deliveries.recipient,
            deliveries.status,
            deliveries.attempts,
            deliveries.next_attempt_at,
        ).where(deliveries.alert_message_id.in_(chunk))
        for message_row_id, recipient, status, attempts, moment in connection.execute(
            statement
        ):
            if status != "pending" or attempts > 0 or moment is None:
                touched.add(message_row_id)
            else:
                due[message_row_id][recipient.lower()] = moment
    return {i: times for i, times in due.items() if i not in touched}


def recent_mail(
    connection: Connection, recipients: Collection[str], since: datetime
) -> list[tuple[int, str, datetime, str]]:
    """Return the mail deliveries to ``recipients`` sent or due since ``since``.

    Each is (message id, recipient, when sent or due, the alert's level), for
    the hourly cap per recipient. Recipients match in any letter case.
    """
    deliveries = alert_deliveries.c
    moment = func.coalesce(deliveries.sent_at, deliveries.next_attempt_at)
    found = []
    lowered = sorted({recipient.lower() for recipient in recipients})
    for chunk in chunks(lowered, LOOKUP_CHUNK):
        statement = (
            select(
                deliveries.alert_message_id,
                deliveries.recipient,
                moment,
                alerts.c.level,
            )
            .join_from(alert_deliveries, alert_messages)
            .join(alerts, alerts.c.id == alert_messages.c.alert_id)
            .where(
                deliveries.channel.in_(MAIL_CHANNELS),
                func.lower(deliveries.recipient).in_(chunk),
                deliveries.status != "failed",
                moment >= since,
            )
        )
        found.extend(tuple(row) for row in connection.execute(statement))
    return found


# Delivery


def claim_due(
    connection: Connection,
    now: datetime,
    *,
    mail_channel: str | None,
    robots: Collection[tuple[str, str]],
    max_messages: int,
) -> Claimed:
    """Mark the due deliveries of up to ``max_messages`` messages as sending.

    A delivery is due when it is pending and its ``next_attempt_at`` is not
    after ``now``. Only deliveries on ``mail_channel`` and to the ``robots``
    given as (kind, name) are claimed, so that those of a channel that is
    not set up wait. Every due delivery of a claimed message is claimed, so
    one SMTP transaction can serve all its recipients. The messages with the
    earliest due delivery come first.
    """
    served = _channel_filter(mail_channel, robots)
    if served is None or max_messages < 1:
        return Claimed()
    column = alert_deliveries.c
    due = (column.status == "pending", column.next_attempt_at <= now, served)
    # Reading the first due deliveries in the order of the (status,
    # next_attempt_at) index keeps a claim from reading every pending row.
    first_due = connection.execute(
        select(column.alert_message_id)
        .where(*due)
        .order_by(column.next_attempt_at, column.id)
        .limit(max_messages * CLAIM_LOOKAHEAD)
    ).scalars()
    message_ids = list(dict.fromkeys(first_due))[:max_messages]
    if not message_ids:
        return Claimed()

    claimed = _lock_due(connection, message_ids, now, mail_channel, robots)
    connection.execute(
        update(alert_deliveries)
        .where(column.id.in_([delivery.id for delivery in claimed]))
        .values(status="sending")
    )
    claimed = [replace(delivery, status="sending") for delivery in claimed]
    messages = _messages_by_id(connection, message_ids)
    alert_ids = list({message.alert_id for message in messages.values()})
    alert_rows = connection.execute(select(alerts).where(alerts.c.id.in_(alert_ids)))
    return Claimed(
        deliveries=tuple(claimed),
        messages=messages,
        alerts={row["id"]: rows.alert_from_row(row) for row in alert_rows.mappings()},
    )


def _lock_due(
    connection: Connection,
    message_ids: Sequence[int],
    now: datetime,
    mail_channel: str | None,
    robots: Collection[tuple[str, str]],
) -> list[DeliveryRecord]:
    """Lock the deliveries of the messages and return those due, in order.

    The rows are read by message and filtered here, because given a status
    condition SQLite picks the (status, next_attempt_at) index and reads
    every pending row. FOR UPDATE keeps a concurrent claim on PostgreSQL
    from taking the same rows; SQLite has a single writer.
    """
    statement = (
        select(alert_deliveries)
        .where(alert_deliveries.c.alert_message_id.in_(message_ids))
        .order_by(alert_deliveries.c.alert_message_id, alert_deliveries.c.id)
        .with_for_update()
    )
    robot_targets = set(robots)
    due = []
    for row in connection.execute(statement).mappings():
        delivery = rows.delivery_from_row(row)
        served = delivery.channel == mail_channel or (
            (delivery.channel, delivery.recipient) in robot_targets
        )
        next_attempt = delivery.next_attempt_at
        ready = next_attempt is not None and next_attempt <= now
        if delivery.status == "pending" and ready and served:
            due.append(delivery)
    return due


def _channel_filter(
    mail_channel: str | None, robots: Collection[tuple[str, str]]
) -> Any | None:
    column = alert_deliveries.c
    clauses = []
    if mail_channel is not None:
        if mail_channel not in MAIL_CHANNELS:
            raise ValueError(
                f"unknown mail channel {mail_channel!r}; "
                f"expected one of {', '.join(MAIL_CHANNELS)}"
            )
        clauses.append(column.channel == mail_channel)
    for kind, name in robots:
        if kind not in ROBOT_CHANNELS:
            raise ValueError(
                f"unknown robot kind {kind!r} of robot {name!r}; "
                f"expected one of {', '.join(ROBOT_CHANNELS)}"
            )
        clauses.append(and_(column.channel == kind, column.recipient == name))
    return or_(*clauses) if clauses else None


def _messages_by_id(connection: Connection, message_ids: Sequence[int]) -> dict:
    statement = select(alert_messages).where(alert_messages.c.id.in_(message_ids))
    return {
        row["id"]: rows.message_from_row(row)
        for row in connection.execute(statement).mappings()
    }


def record_attempts(
    connection: Connection, outcomes: Sequence[AttemptOutcome], attempted_at: datetime
) -> None:
    """Record the outcome of one attempt at each claimed delivery.

    Raises ValueError for an invalid outcome and LookupError for a delivery
    that is not marked sending, before or while writing. The caller's
    transaction then rolls everything back.
    """
    for outcome in outcomes:
        _check_outcome(outcome)
    column = alert_deliveries.c
    for outcome in outcomes:
        detail = outcome.detail[:MAX_ERROR_LENGTH]
        sent = outcome.status == "sent"
        updated = connection.execute(
            update(alert_deliveries)
            .where(column.id == outcome.delivery_id, column.status == "sending")
            .values(
                status=outcome.status,
                attempts=column.attempts + 1,
                next_attempt_at=outcome.next_attempt_at,
                last_error=None if sent else detail,
                last_code=outcome.code,
                sent_at=attempted_at if sent else None,
            )
        )
        if updated.rowcount == 0:
            raise LookupError(
                f"delivery {outcome.delivery_id} is not being sent; only a "
                "claimed delivery takes an outcome"
            )
    if outcomes:
        connection.execute(
            insert(delivery_attempts),
            [
                {
                    "delivery_id": outcome.delivery_id,
                    "attempted_at": attempted_at,
                    "ok": outcome.status == "sent",
                    "code": outcome.code,
                    "detail": outcome.detail[:MAX_ERROR_LENGTH],
                }
                for outcome in outcomes
            ],
        )


def _check_outcome(outcome: AttemptOutcome) -> None:
    if outcome.status not in OUTCOME_STATUSES:
        raise ValueError(
            f"invalid outcome status {outcome.status!r} of delivery "
            f"{outcome.delivery_id}; expected one of {', '.join(OUTCOME_STATUSES)}"
        )
    if (outcome.status == "pending") != (outcome.next_attempt_at is not None):
        raise ValueError(
            f"delivery {outcome.delivery_id}: a pending outcome needs "
            "next_attempt_at, and the other outcomes take none"
        )


def release(connection: Connection, delivery_ids: Sequence[int]) -> None:
    """Put claimed deliveries that were not attempted back to pending."""
    column = alert_deliveries.c
    connection.execute(
        update(alert_deliveries)
        .where(column.id.in_(list(delivery_ids)), column.status == "sending")
        .values(status="pending")
    )


def mark_unconfirmed(
    connection: Connection,
    now: datetime,
    delivery_ids: Sequence[int] | None = None,
    error: str | None = None,
) -> list[int]:
    """Mark deliveries still sending as unconfirmed; return their ids.

    ``delivery_ids`` limits the change to those deliveries, and ``error`` is
    added to the recorded reason. Each gets an attempt, because the sender
    may have sent it.
    """
    column = alert_deliveries.c
    detail = UNCONFIRMED_ERROR if not error else f"{UNCONFIRMED_ERROR}: {error}"
    detail = detail[:MAX_ERROR_LENGTH]
    statement = (
        update(alert_deliveries)
        .where(column.status == "sending")
        .values(
            status="unconfirmed",
            attempts=column.attempts + 1,
            next_attempt_at=None,
            last_error=detail,
            last_code=None,
        )
        .returning(column.id)
    )
    if delivery_ids is not None:
        statement = statement.where(column.id.in_(list(delivery_ids)))
    marked = connection.execute(statement).scalars().all()
    if marked:
        connection.execute(
            insert(delivery_attempts),
            [
                {
                    "delivery_id": delivery_id,
                    "attempted_at": now,
                    "ok": False,
                    "code": None,
                    "detail": detail,
                }
                for delivery_id in marked
            ],
        )
    return sorted(marked)


def settle_unserved(
    connection: Connection,
    now: datetime,
    *,
    mail_channel: str | None,
    robots: Collection[tuple[str, str]],
    reasons: Mapping[tuple[str, str], str],
    retry_time: timedelta,
) -> tuple[int, list[int]]:
    """Record why pending robot deliveries that no sender serves wait, and fail
    those older than ``retry_time``, as for any temporary failure.

    ``mail_channel`` and ``robots`` are what the senders of this run serve,
    and ``reasons`` contains the setup error of each robot left out, by
    (kind, name). A robot with no reason is no longer in the config. Returns
    how many deliveries got a new reason, and the ids of those failed.
    """
    column = alert_deliveries.c
    waiting = [column.status == "pending", column.channel.in_(ROBOT_CHANNELS)]
    served = _channel_filter(mail_channel, robots)
    if served is not None:
        waiting.append(~served)
    targets = connection.execute(
        select(column.channel, column.recipient).where(*waiting).distinct()
    ).all()
    cutoff = now - retry_time
    hours = retry_time.total_seconds() / 3600
    noted = 0
    failed: list[int] = []
    for kind, name in targets:
        reason = reasons.get((kind, name)) or f"robot {name} is not in the config"
        detail = f"not sent, the channel is not set up: {reason}"[:MAX_ERROR_LENGTH]
        given_up = f"gave up after {hours:g} h: {detail}"[:MAX_ERROR_LENGTH]
        target = (*waiting, column.channel == kind, column.recipient == name)
        failed += _fail_waiting(connection, target, cutoff, given_up, now)
        noted += connection.execute(
            update(alert_deliveries)
            .where(
                *target,
                or_(column.last_error.is_(None), column.last_error != detail),
            )
            .values(last_error=detail, last_code=None)
        ).rowcount
    return noted, sorted(failed)


def _fail_waiting(
    connection: Connection,
    target: Sequence[Any],
    cutoff: datetime,
    detail: str,
    now: datetime,
) -> list[int]:
    column = alert_deliveries.c
    failed = (
        connection.execute(
            update(alert_deliveries)
            .where(*target, column.created_at <= cutoff)
            .values(
                status="failed",
                attempts=column.attempts + 1,
                next_attempt_at=None,
                last_error=detail,
                last_code=None,
            )
            .returning(column.id)
        )
        .scalars()
        .all()
    )
    if failed:
        connection.execute(
            insert(delivery_attempts),
            [
                {
                    "delivery_id": delivery_id,
                    "attempted_at": now,
                    "ok": False,
                    "code": None,
                    "detail": detail,
                }
                for delivery_id in failed
            ],
        )
    return list(failed)


def move_pending_mail(connection: Connection, channel: str) -> int:
    """Move the pending deliveries of the other mail channel to ``channel``.

    A delivery whose message already has one on ``channel`` for the same
    recipient stays where it is. Returns how many moved.
    """
    if channel not in MAIL_CHANNELS:
        raise ValueError(
            f"unknown mail channel {channel!r}; expected one of "
            f"{', '.join(MAIL_CHANNELS)}"
        )
    column = alert_deliveries.c
    other = alert_deliveries.alias("other")
    taken = (
        select(other.c.id)
        .where(
            other.c.alert_message_id == column.alert_message_id,
            other.c.recipient == column.recipient,
            other.c.channel == channel,
        )
        .exists()
    )
    moved = connection.execute(
        update(alert_deliveries)
        .where(
            column.status == "pending",
            column.channel.in_([c for c in MAIL_CHANNELS if c != channel]),
            ~taken,
        )
        .values(channel=channel)
    )
    return moved.rowcount


# Reading


def list_alerts(
    connection: Connection,
    *,
    limit: int,
    status: str | None = None,
    before: int | None = None,
) -> list[AlertSummary]:
    """Return alerts newest first, with counts of their messages and deliveries.

    ``status`` keeps the alerts in that state, and ``before`` those with a
    smaller id, for paging.
    """
    statement = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(alerts.c.status == status)
    if before is not None:
        statement = statement.where(alerts.c.id < before)
    found = [
        rows.alert_from_row(row) for row in connection.execute(statement).mappings()
    ]
    alert_ids = [alert.id for alert in found]
    message_counts = dict(
        connection.execute(
            select(alert_messages.c.alert_id, func.count())
            .where(alert_messages.c.alert_id.in_(alert_ids))
            .group_by(alert_messages.c.alert_id)
        ).all()
    )
    counts, failed = _delivery_counts(connection, alert_ids)
    return [
        AlertSummary(
            alert=alert,
            messages=message_counts.get(alert.id, 0),
            deliveries=dict(counts[alert.id]),
            failed_channels=tuple(sorted(failed[alert.id])),
        )
        for alert in found
    ]


def _delivery_counts(
    connection: Connection, alert_ids: Sequence[int]
) -> tuple[dict[int, dict[str, int]], dict[int, set[str]]]:
    column = alert_deliveries.c
    statement = (
        select(alert_messages.c.alert_id, column.channel, column.status, func.count())
        .join_from(alert_deliveries, alert_messages)
        .where(alert_messages.c.alert_id.in_(alert_ids))
        .group_by(alert_messages.c.alert_id, column.channel, column.status)
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failed: dict[int, set[str]] = defaultdict(set)
    for alert_id, channel, status, count in connection.execute(statement):
        counts[alert_id][status] += count
        if status == "failed":
            failed[alert_id].add(channel)
    return counts, failed


def get_alert(connection: Connection, alert_id: int) -> AlertDetail | None:
    """Return an alert with its messages and their deliveries, or None."""
    row = (
        connection.execute(select(alerts).where(alerts.c.id == alert_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    message_rows = connection.execute(
        select(alert_messages)
        .where(alert_messages.c.alert_id == alert_id)
        .order_by(alert_messages.c.sequence)
    ).mappings()
    messages = tuple(rows.message_from_row(message) for message in message_rows)
    delivery_rows = connection.execute(
        select(alert_deliveries)
        .where(alert_deliveries.c.alert_message_id.in_([m.id for m in messages]))
        .order_by(alert_deliveries.c.alert_message_id, alert_deliveries.c.id)
    ).mappings()
    return AlertDetail(
        alert=rows.alert_from_row(row),
        messages=messages,
        deliveries=tuple(rows.delivery_from_row(d) for d in delivery_rows),
    )


def count_alerts_with(connection: Connection, statuses: Sequence[str]) -> int:
    """Count the alerts that have a delivery in one of ``statuses``."""
    statement = (
        select(func.count(func.distinct(alert_messages.c.alert_id)))
        .join_from(alert_deliveries, alert_messages)
        .where(alert_deliveries.c.status.in_(statuses))
    )
    return connection.execute(statement).scalar_one()


def overdue_alerts(
    connection: Connection,
    now: datetime,
    tiers_by_level: Mapping[str, int],
    limit: int,
) -> list[AlertRecord]:
    """Return open alerts whose deadline passed and that have tiers left.

    ``tiers_by_level`` gives the number of escalation tiers of each level
    that escalates. The (status, deadline) index serves the query. The
    earliest deadline comes first.
    """
    if not tiers_by_level:
        return []
    statement = overdue_statement(now, tiers_by_level, limit)
    return [
        rows.alert_from_row(row) for row in connection.execute(statement).mappings()
    ]


def overdue_statement(
    now: datetime, tiers_by_level: Mapping[str, int], limit: int
) -> Select:
    """Build the query of :func:`overdue_alerts`."""
    column = alerts.c
    tiers_left = or_(
        *(
            and_(column.level == level, column.escalation_tier < count)
            for level, count in tiers_by_level.items()
        )
    )
    return (
        select(alerts)
        .where(
            column.status == "open",
            column.deadline.is_not(None),
            column.deadline <= now,
            tiers_left,
        )
        .order_by(column.deadline, column.id)
        .limit(limit)
    )


def escalate(
    connection: Connection,
    alert_id: int,
    tier: int,
    message: NewMessage,
    now: datetime,
) -> int | None:
    """Raise an open alert's escalation tier from ``tier`` and add its message.

    Returns the message's id, or None when the alert is no longer open or
    another writer already raised the tier, so that each tier is notified once.
    """
    check_message(message)
    column = alerts.c
    raised = connection.execute(
        update(alerts)
        .where(
            column.id == alert_id,
            column.status == "open",
            column.escalation_tier == tier,
        )
        .values(escalation_tier=tier + 1)
    ).rowcount
    if not raised:
        return None
    return add_message(connection, alert_id, message, now)


def confirm_delivery(
    connection: Connection, delivery_id: int, by: str, now: datetime
) -> DeliveryRecord:
    """Mark an unconfirmed delivery as sent, after a person found the message
    in the recipient's mailbox, and log it as an attempt.

    Raises LookupError for an unknown delivery and ValueError for one that
    is not unconfirmed.
    """
    column = alert_deliveries.c
    row = (
        connection.execute(select(alert_deliveries).where(column.id == delivery_id))
        .mappings()
        .first()
    )
    if row is None:
        raise LookupError(f"delivery {delivery_id} not found")
    delivery = rows.delivery_from_row(row)
    if delivery.status != "unconfirmed":
        raise ValueError(
            f"delivery {delivery_id} is {delivery.status}; only an unconfirmed "
            "delivery can be confirmed"
        )
    detail = f"confirmed by {by}: the message arrived"[:MAX_ERROR_LENGTH]
    connection.execute(
        update(alert_deliveries)
        .where(column.id == delivery_id, column.status == "unconfirmed")
        .values(status="sent", sent_at=now, last_error=None, last_code=None)
    )
    connection.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id, attempted_at=now, ok=True, code=None, detail=detail
        )
    )
    return replace(delivery, status="sent", sent_at=now, last_error=None)


def acknowledge(connection: Connection, alert_id: int, by: str, now: datetime) -> bool:
    """Mark an open alert acknowledged by ``by`` at ``now``, which stops its
    escalation; return whether it changed.

    An alert already acknowledged or closed keeps who acknowledged it and when.
    Raises LookupError for an unknown alert and ValueError for an empty ``by``.
    """
    if not by.strip():
        raise ValueError("an acknowledgement needs the name of who acknowledged")
    changed = connection.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.status == "open")
        .values(
            status="acknowledged",
            acknowledged_at=now,
            acknowledged_by=by,
            updated_at=now,
        )
    ).rowcount
    if changed:
        return True
    found = connection.execute(select(alerts.c.id).where(alerts.c.id == alert_id))
    if found.first() is None:
        raise LookupError(f"alert {alert_id} not found")
    return False
