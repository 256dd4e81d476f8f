"""Deliver the alert messages that are already committed to the database.

Every message is stored with one delivery per channel and recipient before
any attempt to send it. :func:`deliver_due` claims the deliveries that are
due, one message at a time, marking them sending in the database before
anything is sent, sends them and records each outcome:

- sent: done;
- a temporary failure (network error, timeout, SMTP 4xx, a robot's temporary
  error class): tried again after a back-off of about 30 seconds, doubling
  with each attempt up to 30 minutes, with jitter, until the delivery is
  older than the retry time (24 hours by default), when it fails;
- a permanent failure (SMTP 5xx to the message or a recipient, a robot's
  permanent error class): failed at once, so that a server rejecting every
  message costs one attempt per recipient.

A job that stops between sending and recording leaves deliveries marked
sending. :meth:`storage.Store.mark_unconfirmed` turns them into unconfirmed
deliveries at the next start, which are not sent again automatically,
because the message may have arrived.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from alerts.cards import card_from_json
from alerts.mail import Composed
from alerts.robots import RobotSender
from alerts.senders import MailSender, MailSession, Refusal
from config import Alerts
from storage import (
    MAIL_CHANNELS,
    AlertRecord,
    AttemptOutcome,
    Claimed,
    DeliveryRecord,
    MessageRecord,
    NewDelivery,
    NewMessage,
    Store,
)

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 30 * 60.0
DEFAULT_RETRY_TIME = timedelta(hours=24)
# The back-off is cut by up to this share at random, so that deliveries that
# failed together are not all tried again at the same moment.
JITTER = 0.25


def mail_channel(settings: Alerts) -> str:
    """Return the mail channel that the settings deliver through."""
    return "smtp" if settings.smtp is not None else "eml"


def mail_deliveries(channel: str, recipients: Sequence[str]) -> tuple[NewDelivery, ...]:
    """Return one delivery per distinct mail address among ``recipients``.

    A recipient may carry a display name ("公关部 <pr@example.com>"); the
    delivery keeps the bare address, which the SMTP envelope needs.
    """
    return tuple(
        NewDelivery(channel, address) for address in bare_addresses(recipients)
    )


def bare_addresses(recipients: Sequence[str]) -> tuple[str, ...]:
    """Return the distinct bare mail addresses of ``recipients``, display names
    dropped, in their first spelling."""
    addresses: dict[str, str] = {}
    for recipient in recipients:
        address = parseaddr(recipient)[1] or recipient
        addresses.setdefault(address.lower(), address)
    return tuple(addresses.values())


def mail_message(
    composed: Composed, settings: Alerts, recipients: Sequence[str]
) -> NewMessage:
    """Return the first message of an alert that goes by mail only."""
    return NewMessage(
        reason="new",
        message_id=composed.message_id,
        subject=composed.subject,
        message=composed.message,
        deliveries=mail_deliveries(mail_channel(settings), recipients),
    )


@dataclass
class Senders:
    """The senders of one outbox run: one mail sender, robots by configured name.

    ``unavailable`` contains the setup error of each configured robot that
    has no sender, by (kind, name). Use it as a context manager, or call
    :meth:`close`, to close the robots' HTTP clients.
    """

    mail: MailSender | None = None
    robots: Mapping[str, RobotSender] = field(default_factory=dict)
    unavailable: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def close(self) -> None:
        for robot in self.robots.values():
            robot.close()

    def __enter__(self) -> Senders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(slots=True)
class DeliveryReport:
    """Counts of delivery outcomes in one run.

    ``retrying`` counts temporary failures that will be tried again,
    ``failed`` the deliveries that failed for good, and ``unconfirmed`` those
    whose sender raised an unexpected error, so that their outcome is unknown.
    """

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unconfirmed: int = 0

    def add(self, other: DeliveryReport) -> None:
        """Add the counts of another run to these."""
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.unconfirmed += other.unconfirmed

    @property
    def unsuccessful(self) -> int:
        """The deliveries attempted without success, whatever comes next."""
        return self.retrying + self.failed + self.unconfirmed


def deliver_due(
    store: Store,
    senders: Senders,
    now: datetime,
    stop: Callable[[], bool] = lambda: False,
    *,
    retry_time: timedelta = DEFAULT_RETRY_TIME,
    jitter: Callable[[], float] = random.random,
) -> DeliveryReport:
    """Deliver every delivery due at ``now`` and record each attempt.

    ``now`` is the time of this run: deliveries due by then are sent, and
    attempts are recorded at it. Only the mail channel of ``senders`` and
    its robots are served. The robot deliveries of other robots wait with the
    reason as their last error, and fail once older than ``retry_time``.
    ``stop`` is called before each message and robot, and what is left stays
    pending. ``jitter`` returns a number in [0, 1) that sets each back-off's
    jitter.
    """
    report = DeliveryReport()
    run = _Run(store, senders, now, retry_time, jitter, report)
    robots = [(robot.kind, name) for name, robot in senders.robots.items()]
    channel = senders.mail.channel if senders.mail is not None else None
    try:
        while not stop():
            claimed = store.claim_deliveries(
                now, mail_channel=channel, robots=robots, max_messages=1
            )
            if not claimed.deliveries:
                break
            run.deliver(claimed, stop)
    finally:
        run.close()
    if not stop():
        failed = store.settle_unserved(
            now,
            mail_channel=channel,
            robots=robots,
            reasons=senders.unavailable,
            retry_time=retry_time,
        )
        report.failed += len(failed)
        if failed:
            logger.error(
                "alert delivery failed for good, channel not set up count=%s ids=%s",
                len(failed),
                failed[:20],
            )
    return report


def backoff_seconds(attempts: int, jitter: float) -> float:
    """Return the wait after the ``attempts``-th failed attempt, in seconds.

    30 seconds after the first, doubling, at most 30 minutes, and shortened
    by up to a quarter as ``jitter`` (from 0 to 1) sets.
    """
    base = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return base * (1.0 - JITTER * jitter)


class _Run:
    """The state of one call of :func:`deliver_due`: the open mail session."""

    def __init__(
        self,
        store: Store,
        senders: Senders,
        now: datetime,
        retry_time: timedelta,
        jitter: Callable[[], float],
        report: DeliveryReport,
    ) -> None:
        self.store = store
        self.senders = senders
        self.now = now
        self.retry_time = retry_time
        self.jitter = jitter
        self.report = report
        self._session: MailSession | None = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def deliver(self, claimed: Claimed, stop: Callable[[], bool]) -> None:
        """Send the claimed deliveries of one message: the mail, then each robot.

        Deliveries not attempted, because of ``stop`` or an error, go back to
        pending. One whose sender raised an unexpected error is unconfirmed.
        """
        waiting = {delivery.id: delivery for delivery in claimed.deliveries}
        try:
            for group in _groups(claimed.deliveries):
                if stop():
                    break
                for delivery in group:
                    del waiting[delivery.id]
                message = claimed.messages[group[0].message]
                self._attempt(message, claimed.alerts[message.alert_id], group)
        finally:
            if waiting:
                self.store.release_deliveries(sorted(waiting))

    def _attempt(
        self, message: MessageRecord, alert: AlertRecord, group: list[DeliveryRecord]
    ) -> None:
        try:
            if group[0].channel in MAIL_CHANNELS:
                outcomes = self._send_mail(message, alert, group)
            else:
                outcomes = [self._send_robot(message, group[0])]
        except Exception as exc:
            logger.exception(
                "alert sender failed unexpectedly, outcome unknown alert=%s "
                "message=%s channel=%s",
                alert.id,
                message.id,
                group[0].channel,
            )
            ids = [delivery.id for delivery in group]
            self.store.mark_unconfirmed(self.now, delivery_ids=ids, error=str(exc))
            self.report.unconfirmed += len(ids)
            # The session's state is unknown, so the next message opens another.
            self.close()
            return
        self.store.record_attempts(outcomes, self.now)
        self._count_and_log(alert, message, group, outcomes)

    def _send_mail(
        self, message: MessageRecord, alert: AlertRecord, group: list[DeliveryRecord]
    ) -> list[AttemptOutcome]:
        if self._session is None:
            assert self.senders.mail is not None, "only configured channels are claimed"
            self._session = self.senders.mail.open()
        result = self._session.send(message, alert, [d.recipient for d in group])
        outcomes = []
        for delivery in group:
            refusal = result.refused.get(delivery.recipient)
            if refusal is None:
                outcomes.append(AttemptOutcome(delivery.id, "sent", result.detail))
            else:
                outcomes.append(self._outcome(delivery, refusal))
        return outcomes

    def _send_robot(
        self, message: MessageRecord, delivery: DeliveryRecord
    ) -> AttemptOutcome:
        robot = self.senders.robots[delivery.recipient]
        if message.card is None:
            refusal = Refusal(False, "the message has no robot card")
            return self._outcome(delivery, refusal)
        try:
            card = card_from_json(message.card)
        except ValueError as exc:
            return self._outcome(delivery, Refusal(False, str(exc)))
        result = robot.send_card(card)
        if result.ok:
            return AttemptOutcome(delivery.id, "sent", f"robot {robot.name}", 0)
        code = result.code if result.code is not None else result.status
        refusal = Refusal(result.temporary, result.detail, code, result.retry_after)
        return self._outcome(delivery, refusal)

    def _outcome(self, delivery: DeliveryRecord, refusal: Refusal) -> AttemptOutcome:
        """Turn a refusal into a retry, or a failure when it is permanent or the
        delivery is older than the retry time."""
        if not refusal.temporary:
            return AttemptOutcome(delivery.id, "failed", refusal.detail, refusal.code)
        give_up_at = delivery.created_at + self.retry_time
        if self.now >= give_up_at:
            hours = self.retry_time.total_seconds() / 3600
            detail = (
                f"gave up after {hours:g} h of temporary failures: {refusal.detail}"
            )
            return AttemptOutcome(delivery.id, "failed", detail, refusal.code)
        wait = backoff_seconds(delivery.attempts + 1, self.jitter())
        if refusal.retry_after is not None:
            wait = max(wait, refusal.retry_after)
        next_attempt = min(self.now + timedelta(seconds=wait), give_up_at)
        return AttemptOutcome(
            delivery.id, "pending", refusal.detail, refusal.code, next_attempt
        )

    def _count_and_log(
        self,
        alert: AlertRecord,
        message: MessageRecord,
        group: list[DeliveryRecord],
        outcomes: list[AttemptOutcome],
    ) -> None:
        channel = group[0].channel
        for outcome in outcomes:
            ids = (alert.id, message.id, channel, outcome.delivery_id)
            if outcome.status == "sent":
                self.report.sent += 1
                logger.info(
                    "alert delivered alert=%s message=%s channel=%s delivery=%s", *ids
                )
            elif outcome.status == "pending":
                self.report.retrying += 1
                logger.warning(
                    "alert delivery failed, retried later alert=%s message=%s "
                    "channel=%s delivery=%s next=%s code=%s error=%s",
                    *ids,
                    outcome.next_attempt_at.isoformat(),
                    outcome.code,
                    outcome.detail,
                )
            else:
                self.report.failed += 1
                logger.error(
                    "alert delivery failed for good alert=%s message=%s channel=%s "
                    "delivery=%s code=%s error=%s",
                    *ids,
                    outcome.code,
                    outcome.detail,
                )


def _groups(deliveries: Sequence[DeliveryRecord]) -> list[list[DeliveryRecord]]:
    """Split one message's deliveries: all its mail first, then each robot alone."""
    mail = [d for d in deliveries if d.channel in MAIL_CHANNELS]
    robots = [[d] for d in deliveries if d.channel not in MAIL_CHANNELS]
    return ([mail] if mail else []) + robots
