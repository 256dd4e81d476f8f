"""The database tables, declared once for SQLite and PostgreSQL.

The store runs Core statements against ``Post.__table__`` and its siblings. The
ORM classes declare the schema with types and give Alembic its ``metadata``.
The first migration repeats this schema by hand, and a test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from items import SIGNAL_KINDS

# SQLite makes only a column declared exactly INTEGER PRIMARY KEY an alias of
# the rowid, which is what gives it automatic ids.
ID = BigInteger().with_variant(Integer(), "sqlite")

ALERT_STATUSES = ("open", "acknowledged", "closed")
MAIL_CHANNELS = ("smtp", "eml")
ROBOT_CHANNELS = ("wecom", "dingtalk", "feishu")
DELIVERY_CHANNELS = MAIL_CHANNELS + ROBOT_CHANNELS
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "unconfirmed")
RUN_STATUSES = ("running", "ok", "partial", "failed")
# A server default for new boolean columns. Named here, because the Post class
# has a column called text.
FALSE = text("false")
SIGNAL_SUBJECTS = ("post", "problem", "brand")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC and read back in UTC.

    PostgreSQL stores ``timestamp with time zone``. SQLite has no time zone
    type, so the value is stored as naive UTC text, which also sorts in time
    order. A naive datetime raises ValueError, because its instant is unknown,
    and SQLAlchemy wraps that in ``StatementError``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Post(Base):
    """One collected post, stored once under its ``identity_key``.

    The key is ``native:<platform>:<id>`` for a platform's own post id, shared
    by every source that reads the post, and ``source:<source>:<external_id>``
    otherwise (see :func:`storage.rows.post_key`). ``source`` is the source
    that stored the post first, and ``(source, external_id)`` stays unique.
    Columns filled from source data are TEXT, so that no hostile value can be
    too long for PostgreSQL while SQLite, which ignores lengths, accepts it.
    ``source`` comes from the config and ``external_id`` is checked on insert.
    """

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index(None, "identity_key", unique=True),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    # "source:", a source of 64 characters, ":" and an external id of 512 fit.
    identity_key: Mapped[str] = mapped_column(String(600))
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(512))
    platform: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(Text)
    author_name: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[str | None] = mapped_column(Text)
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    author_verified: Mapped[str] = mapped_column(Text)
    author_role: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None]
    collected_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    raw: Mapped[dict[str, Any]]
    # The source gave no readable time: created_at is the collection time.
    time_estimated: Mapped[bool] = mapped_column(server_default=FALSE)
    # When the source was first seen showing the post removed or deleted. The
    # text captured before stays.
    removed_at: Mapped[datetime | None]
    # New engagement was stored and the post is still to be graded again. Set
    # with the snapshot and cleared with the regrading, so that a crash in
    # between leaves the work for the next start.
    regrade_pending: Mapped[bool] = mapped_column(server_default=FALSE)
    # When the full text of a post that its source showed cut short was looked
    # up, whether or not it was found, so that it is looked up once.
    text_checked_at: Mapped[datetime | None]


class EngagementSnapshot(Base):
    """Reaction counts of a post at one time, added only when they change."""

    __tablename__ = "engagement_snapshots"
    __table_args__ = (Index(None, "post_id", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))
    taken_at: Mapped[datetime]
    likes: Mapped[int] = mapped_column(BigInteger)
    reposts: Mapped[int] = mapped_column(BigInteger)
    comments: Mapped[int] = mapped_column(BigInteger)


class ClassificationRow(Base):
    """The kind of a post and its brand relevance (the latest row per post counts)."""

    __tablename__ = "classifications"
    __table_args__ = (Index(None, "post_id", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float]
    cues: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    demands: Mapped[list[str]] = mapped_column(JSON)
    channels: Mapped[list[str]] = mapped_column(JSON)
    root_cause: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(128))
    relevant: Mapped[bool]
    brand: Mapped[str | None] = mapped_column(Text)
    models: Mapped[list[str]] = mapped_column(JSON)
    competitors: Mapped[list[str]] = mapped_column(JSON)
    competitor_models: Mapped[list[str]] = mapped_column(
        JSON, server_default=text("'[]'")
    )
    truncated: Mapped[bool]
    created_at: Mapped[datetime]


class GradingRow(Base):
    """The four factor scores of a classified post, with the level they give."""

    __tablename__ = "gradings"
    __table_args__ = (
        Index(None, "post_id", "id"),
        Index(None, "classification_id"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))
    classification_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("classifications.id")
    )
    customer_loss: Mapped[int] = mapped_column(Integer)
    company_fault: Mapped[int] = mapped_column(Integer)
    public_impact: Mapped[int] = mapped_column(Integer)
    customer_identity: Mapped[int] = mapped_column(Integer)
    # {factor name: [evidence, ...]} for the four factors
    evidence: Mapped[dict[str, Any]]
    level: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(32))
    safety: Mapped[bool]
    high_risk: Mapped[bool]
    deadline: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Alert(Base):
    """One alert about a post or a source, and its state as people handle it.

    ``status`` is open, acknowledged or closed. ``deadline`` is the
    first-response deadline, None for alerts without one (notices to
    operations, alerts stored before deadlines were kept). The alert's
    messages, the first and its updates, are in ``alert_messages``.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), "status"),
        Index(None, "status", "created_at"),
        # The escalation check reads the open alerts whose deadline passed.
        Index(None, "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("posts.id"))
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    escalation_tier: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The incident the alert covers, and what its last message reported: the
    # incident's reach (likes, reposts and comments over its posts), how many
    # people reported it, and whether it was forecast to go viral.
    incident_id: Mapped[int | None] = mapped_column(BigInteger)
    root_cause: Mapped[str | None] = mapped_column(String(16))
    reach: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    owners: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    viral: Mapped[bool] = mapped_column(server_default=FALSE)
    last_message_at: Mapped[datetime | None]


class AlertMessage(Base):
    """One message of an alert: the first (``sequence`` 0) or a later update.

    ``message`` is the whole RFC 5322 mail, headers and body, sent unchanged
    to every mail recipient. ``message_id`` is its Message-ID header, and an
    update names the earlier messages in ``in_reply_to`` and ``references``.
    ``card`` contains the fields of a chat-robot card, None for a message that
    goes by mail only.
    """

    __tablename__ = "alert_messages"
    __table_args__ = (UniqueConstraint("alert_id", "sequence"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime]


class AlertDelivery(Base):
    """The delivery of one message through one channel to one recipient.

    ``recipient`` is a mail address for the mail channels (smtp, eml) and the
    configured robot's name for the robot channels. A delivery is pending
    until ``next_attempt_at``, sending once the outbox has claimed it, and
    then sent or failed. It is unconfirmed when a sender stopped between
    sending and recording the outcome, because the message may have arrived.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(_in("channel", DELIVERY_CHANNELS), "channel"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), "status"),
        UniqueConstraint("alert_message_id", "channel", "recipient"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    alert_message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_messages.id")
    )
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_code: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class DeliveryAttempt(Base):
    """One attempt at a delivery, successful or not.

    ``code`` is the SMTP reply code or the robot's error code, when there was one.
    """

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "delivery_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_deliveries.id")
    )
    attempted_at: Mapped[datetime]
    ok: Mapped[bool]
    code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text)


class CollectorCursor(Base):
    """The position a source's collector resumes from, in the collector's format."""

    __tablename__ = "collector_cursors"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class SourceRun(Base):
    """One collection run of one source, with its counts."""

    __tablename__ = "source_runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), "status"),
        Index(None, "source", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    fetched: Mapped[int] = mapped_column(Integer)
    new: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    bad: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class SourceSkip(Base):
    """A scheduled run of a source that did not happen, and why.

    ``reason`` is "running" when the previous run had not finished, and
    "missed" when the service was down or busy for longer than the grace time.
    """

    __tablename__ = "source_skips"
    __table_args__ = (Index(None, "source", "skipped_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    skipped_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(16))


class ProblemRow(Base):
    """Similar grievances and complaints: one fault on one car model (同类投诉).

    ``model`` and ``term`` are the key the grouping matches new posts by, and
    ``label`` and ``root_cause`` are derived from the counts when the row is
    written. ``reporters`` counts the distinct people who wrote words about the
    problem. ``models`` counts posts by model, and ``profile`` contains the rest
    of the grouping's state: counts of fault terms, kinds, root causes and
    profile words. ``state_version`` is the version of that state's format.
    """

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    model: Mapped[str | None] = mapped_column(Text)
    term: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(String(16))
    models: Mapped[dict[str, Any]]
    posts: Mapped[int] = mapped_column(BigInteger)
    reports: Mapped[int] = mapped_column(BigInteger)
    incidents: Mapped[int] = mapped_column(BigInteger)
    reporters: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    profile: Mapped[dict[str, Any]]
    state_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class IncidentRow(Base):
    """One post with its copies and reposts, within a problem.

    ``signatures`` are the MinHash signatures that new posts are compared with,
    base64 text in the grouping's state format.
    """

    __tablename__ = "incidents"
    __table_args__ = (Index(None, "problem_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    problem_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("problems.id"))
    posts: Mapped[int] = mapped_column(BigInteger)
    reports: Mapped[int] = mapped_column(BigInteger)
    authors: Mapped[int] = mapped_column(BigInteger)
    reporters: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    signatures: Mapped[list[str]] = mapped_column(JSON)
    state_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class ProblemPost(Base):
    """The incident and problem of a post, set once when the post is assessed.

    ``report`` is False for a repost that adds no words of its own (an
    amplification). ``posted_at`` is the post's time as the grouping read it:
    its creation time, or its collection time when the source gave none.
    """

    __tablename__ = "problem_posts"
    __table_args__ = (
        Index(None, "problem_id"),
        Index(None, "incident_id"),
        Index(None, "posted_at", "problem_id"),
    )

    post_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("posts.id"), primary_key=True, autoincrement=False
    )
    problem_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("problems.id"))
    incident_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("incidents.id"))
    report: Mapped[bool]
    matched_by: Mapped[str] = mapped_column(String(16))
    posted_at: Mapped[datetime]
    assigned_at: Mapped[datetime]


class IncidentAuthor(Base):
    """One person seen in an incident, as a hash of platform and name (or id).

    ``reporter`` is True once the person wrote words in the incident, as the
    author of a report or as a named link of a repost chain.
    """

    __tablename__ = "incident_authors"

    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incidents.id"), primary_key=True, autoincrement=False
    )
    author: Mapped[str] = mapped_column(String(64), primary_key=True)
    reporter: Mapped[bool]


class SignalRow(Base):
    """An early warning for the alert stage, stored once under its key.

    ``subject`` names what it is about: a post (critical, viral, escalation), a
    problem or the brand as a whole (burst). ``occurred_at`` is when the event
    happened, ``created_at`` when the job noticed it.
    """

    __tablename__ = "signals"
    __table_args__ = (
        CheckConstraint(_in("kind", SIGNAL_KINDS), "kind"),
        CheckConstraint(_in("subject", SIGNAL_SUBJECTS), "subject"),
        Index(None, "created_at"),
        Index(None, "post_id"),
        Index(None, "subject", "problem_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("posts.id"))
    problem_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("problems.id")
    )
    level: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]


metadata = Base.metadata
posts = Post.__table__
engagement_snapshots = EngagementSnapshot.__table__
classifications = ClassificationRow.__table__
gradings = GradingRow.__table__
alerts = Alert.__table__
alert_messages = AlertMessage.__table__
alert_deliveries = AlertDelivery.__table__
delivery_attempts = DeliveryAttempt.__table__
collector_cursors = CollectorCursor.__table__
source_runs = SourceRun.__table__
source_skips = SourceSkip.__table__
problems = ProblemRow.__table__
incidents = IncidentRow.__table__
problem_posts = ProblemPost.__table__
incident_authors = IncidentAuthor.__table__
signals = SignalRow.__table__

# The review page's and the review queue's tables live in their own modules and
# share this metadata. Imported last, because they import Base from this one.
from . import queue_tables, web_tables  # noqa: E402, F401
