"""Frozen dataclasses that the store takes and returns, besides those of ``items``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from items import Classification, Grading, Item, Relevance, Signal

from .tables import MAIL_CHANNELS


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A recipient of a message on one channel.

    ``channel`` is "smtp" or "eml" for a mail address, or the kind of a chat
    robot ("wecom", "dingtalk", "feishu") for the configured robot's name.
    """

    channel: str
    recipient: str
    # Not sent before this time: a batching window, a cooldown, quiet hours or
    # the recipient's hourly cap. None sends it as soon as it is stored.
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message of an alert to store, with the deliveries that send it.

    ``message`` is the whole RFC 5322 mail and ``message_id`` its Message-ID
    header, unique among all messages. ``reason`` is a short text such as
    "new", "level raised", "escalation", "resend" or "test". ``card``
    contains the fields of a chat-robot card as JSON values, and the robot
    deliveries need it.
    """

    reason: str
    message_id: str
    subject: str
    message: str
    deliveries: tuple[NewDelivery, ...]
    in_reply_to: str | None = None
    references: str | None = None
    card: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to store with its first message, under a ``dedup_key`` that
    makes a repeat of it a no-op.

    ``post_id`` is None for an alert that is about no single post, and
    ``deadline`` is the first-response deadline, when there is one.
    ``message`` may be a function of the new alert's id that returns the
    message, for a message that names its alert (an acknowledgement link).
    """

    post_id: int | None
    dedup_key: str
    level: str
    kind: str
    subject: str
    message: NewMessage | Callable[[int], NewMessage]
    deadline: datetime | None = None
    state: IncidentFacts | None = None


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """The incident facts an alert's message reports, kept with the alert.

    The next post of the incident is compared with these: see
    :mod:`alerts.policy`. ``last_message_at`` is when that message is due.
    """

    incident_id: int | None
    root_cause: str | None
    reach: int
    owners: int
    viral: bool
    last_message_at: datetime


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """A message to add to a stored alert, with the alert's new state.

    ``replaces`` is the id of the alert's last message when none of its
    deliveries was attempted yet: the update then takes its place instead of
    following it. ``follows`` is the Message-ID of the message before it (None
    for a replaced first message). ``level``, ``kind`` and ``deadline`` become
    the alert's.
    """

    alert_id: int
    message: NewMessage
    level: str
    kind: str
    deadline: datetime | None
    state: IncidentFacts
    follows: str | None
    replaces: int | None = None


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """An alert's last message while none of its deliveries was attempted.

    ``reasons`` are the update reasons it carries (empty for the first
    message), ``send_at`` the earliest time one of its deliveries is due, and
    ``due`` when each recipient's delivery is due, by recipient in lower case.
    """

    id: int
    sequence: int
    message_id: str
    reasons: tuple[str, ...]
    send_at: datetime
    due: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KnownAlert:
    """A stored alert as the planning of its next message needs it.

    ``message_ids`` are the Message-IDs of its messages in order, and
    ``first_subject`` the subject of the first, which replies repeat.
    """

    alert: AlertRecord
    message_ids: tuple[str, ...]
    first_subject: str
    pending: PendingMessage | None


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """The outcome of storing a batch of collected items.

    ``ids`` holds, in the position of each item, the id of the post it
    created, or None for a post already stored. ``refreshed`` lists the
    already stored posts whose engagement changed, once each.
    """

    ids: list[int | None]
    refreshed: list[int]


@dataclass(frozen=True, slots=True)
class Saved:
    """The ids of the alerts and signals a save stored, None where one was known.

    Both lists follow the order of what was passed in.
    """

    alert_ids: list[int | None]
    signal_ids: list[int | None]
    # Messages added to stored alerts; an update that replaced a message not
    # sent yet adds none.
    updated_alerts: int = 0


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A stored early-warning signal."""

    id: int
    signal: Signal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert and its handling state (open, acknowledged or closed).

    ``reach``, ``owners`` and ``viral`` are what the alert's last message,
    sent at ``last_message_at``, reported about its incident.
    """

    id: int
    post_id: int | None
    dedup_key: str
    level: str
    kind: str
    subject: str
    status: str
    deadline: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalation_tier: int
    created_at: datetime
    updated_at: datetime
    incident_id: int | None = None
    root_cause: str | None = None
    reach: int = 0
    owners: int = 0
    viral: bool = False
    last_message_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message of an alert; ``sequence`` 0 is the first."""

    id: int
    alert_id: int
    sequence: int
    reason: str
    message_id: str
    in_reply_to: str | None
    references: str | None
    subject: str
    message: str
    card: Mapping[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """The delivery of one message through one channel to one recipient.

    ``message`` is the id of the :class:`MessageRecord` it delivers.
    ``status`` is pending, sending, sent, failed or unconfirmed, and
    ``last_code`` is the SMTP reply code or robot error code of the last
    attempt, when it gave one.
    """

    id: int
    message: int
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_code: int | None
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """Deliveries marked sending for one run of the outbox.

    ``messages`` contains the message of each delivery by its id, and
    ``alerts`` the alert of each message by its id.
    """

    deliveries: tuple[DeliveryRecord, ...] = ()
    messages: Mapping[int, MessageRecord] = field(default_factory=dict)
    alerts: Mapping[int, AlertRecord] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The outcome of one attempt at a claimed delivery, for the store to record.

    ``status`` is "sent", "pending" for a temporary failure tried again at
    ``next_attempt_at``, or "failed" for a failure that is not tried again.
    ``code`` is the SMTP reply code or the robot's error code, when known.
    """

    delivery_id: int
    status: str
    detail: str = ""
    code: int | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """An alert with counts of its messages and of its deliveries by status.

    ``failed_channels`` lists the channels with a failed delivery.
    """

    alert: AlertRecord
    messages: int
    deliveries: Mapping[str, int]
    failed_channels: tuple[str, ...]

    @property
    def mail_failed(self) -> bool:
        """Whether a mail delivery (smtp or eml) failed."""
        return any(channel in MAIL_CHANNELS for channel in self.failed_channels)

    @property
    def delivery_state(self) -> str:
        """The delivery state in a few words, the most urgent first.

        "mail failed", "robot failed", "unconfirmed", "pending" (pending or
        sending), "sent", or "no deliveries".
        """
        if self.mail_failed:
            return "mail failed"
        if self.failed_channels:
            return "robot failed"
        if self.deliveries.get("unconfirmed"):
            return "unconfirmed"
        if self.deliveries.get("pending") or self.deliveries.get("sending"):
            return "pending"
        if self.deliveries.get("sent"):
            return "sent"
        return "no deliveries"


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """A stored alert with all its messages and deliveries, in order."""

    alert: AlertRecord
    messages: tuple[MessageRecord, ...]
    deliveries: tuple[DeliveryRecord, ...]


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The state of one source: its last run and the posts stored from it.

    ``last_error`` is the error of the most recent run that recorded one, and
    ``last_error_at`` is when that run started. It may be older than the last run.
    ``last_success_at`` is when the last ok or partial run finished, and
    ``failures_in_row`` counts the failed runs since then. ``skipped_runs``
    counts the scheduled runs of the last seven days that did not happen.
    """

    name: str
    posts: int
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_status: str | None = None
    last_bad: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    failures_in_row: int = 0
    skipped_runs: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One collection run of a source."""

    id: int
    source: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Counts that summarise the database for the status command and page.

    ``kinds`` counts posts by the kind of their latest classification.
    ``levels`` counts them by the level of the latest grading of that
    classification, and ``levels_by_kind`` splits the same counts by kind.
    Posts whose latest classification has no grading are not in the level counts.
    The alert counts count alerts with at least one delivery that is pending,
    being sent, failed, or unconfirmed, so one alert may be in several. A
    delivery is being sent while a job sends it, and stays so when that job
    was killed, until the next job marks it unconfirmed at its start.
    """

    sources: tuple[SourceStatus, ...]
    posts: int
    kinds: Mapping[str, int] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)
    levels_by_kind: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pending_alerts: int = 0
    sending_alerts: int = 0
    failed_alerts: int = 0
    unconfirmed_alerts: int = 0


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A stored post with its latest classification and that one's latest grading.

    ``item.engagement`` is the latest engagement snapshot. ``relevance`` has
    no evidence, because the store keeps only its verdict, brand and models.
    """

    id: int
    item: Item
    last_seen_at: datetime
    relevance: Relevance | None = None
    classification: Classification | None = None
    grading: Grading | None = None
    truncated: bool = False
    classified_at: datetime | None = None
    graded_at: datetime | None = None
