"""Give an alert several messages, and a delivery per message, channel and recipient.

An alert keeps its identity (post, dedup key, level, kind, subject), and its
``status`` becomes its handling state: open, acknowledged or closed. Every
existing alert becomes open, and its message becomes its first row in
``alert_messages``. ``alert_deliveries`` had one row per attempt. It now has
one row per message, channel and recipient, and the attempts move to
``delivery_attempts``.

An existing alert gets one delivery per recipient, on the channel of its
latest attempt ("eml" when it had none), with the alert's old status: sent,
failed or pending. The job moves pending mail to the configured mail channel
when it starts. Each old attempt is copied to every delivery of its
alert, because one SMTP transaction or one .eml file served all recipients.

SQLite copies a table to drop or change its columns, and dropping a table
that another table references fails while foreign keys are enforced. So the
messages wait in a staging table while ``alerts`` is rebuilt, before any
table references it again.

Downgrading keeps each alert's first message and its mail deliveries. Later
messages, robot deliveries and the handling state are lost.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""

from collections import defaultdict
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
STAGING = "staging_alert_messages"
INSERT_CHUNK = 500
# Values of the check constraints, copied so that this migration keeps
# creating the same schema if storage.tables changes. The naming convention of
# storage.tables applies to a check constraint's name: "status" on alerts
# becomes ck_alerts_status. Earlier revisions gave full names, which became
# ck_alerts_ck_alerts_status.
NEW_ALERT_STATUSES = "status IN ('open', 'acknowledged', 'closed')"
OLD_ALERT_STATUSES = "status IN ('pending', 'sent', 'failed')"
CHANNELS = "channel IN ('smtp', 'eml', 'wecom', 'dingtalk', 'feishu')"
DELIVERY_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'unconfirmed')"
MAIL_CHANNELS = ("smtp", "eml")
OLD_ALERT_COLUMNS = (
    "recipients",
    "message_id",
    "message",
    "attempts",
    "last_attempt_at",
    "sent_at",
    "last_error",
)
NEW_ALERT_COLUMNS = (
    "deadline",
    "acknowledged_at",
    "acknowledged_by",
    "escalation_tier",
    "updated_at",
)

old_alerts = sa.table(
    "alerts",
    sa.column("id", sa.BigInteger),
    sa.column("subject", sa.Text),
    sa.column("recipients", sa.JSON),
    sa.column("message_id", sa.String),
    sa.column("message", sa.Text),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("created_at", TIME),
    sa.column("updated_at", TIME),
    sa.column("last_attempt_at", TIME),
    sa.column("sent_at", TIME),
    sa.column("last_error", sa.Text),
)
old_deliveries = sa.table(
    "alert_deliveries",
    sa.column("alert_id", sa.BigInteger),
    sa.column("channel", sa.String),
    sa.column("target", sa.Text),
    sa.column("attempted_at", TIME),
    sa.column("status", sa.String),
    sa.column("detail", sa.Text),
)
staging = sa.table(
    STAGING,
    sa.column("alert_id", sa.BigInteger),
    sa.column("message_id", sa.String),
    sa.column("subject", sa.Text),
    sa.column("message", sa.Text),
    sa.column("created_at", TIME),
)
messages = sa.table(
    "alert_messages",
    sa.column("id", sa.BigInteger),
    sa.column("alert_id", sa.BigInteger),
    sa.column("sequence", sa.Integer),
    sa.column("reason", sa.String),
    sa.column("message_id", sa.String),
    sa.column("subject", sa.Text),
    sa.column("message", sa.Text),
    sa.column("created_at", TIME),
)
deliveries = sa.table(
    "alert_deliveries",
    sa.column("id", sa.BigInteger),
    sa.column("alert_message_id", sa.BigInteger),
    sa.column("channel", sa.String),
    sa.column("recipient", sa.String),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", TIME),
    sa.column("last_error", sa.Text),
    sa.column("sent_at", TIME),
    sa.column("created_at", TIME),
)
attempts = sa.table(
    "delivery_attempts",
    sa.column("delivery_id", sa.BigInteger),
    sa.column("attempted_at", TIME),
    sa.column("ok", sa.Boolean),
    sa.column("code", sa.Integer),
    sa.column("detail", sa.Text),
)


def upgrade() -> None:
    connection = op.get_bind()
    alerts_before = connection.execute(
        sa.select(
            old_alerts.c.id,
            old_alerts.c.recipients,
            old_alerts.c.status,
            old_alerts.c.attempts,
            old_alerts.c.created_at,
            old_alerts.c.sent_at,
            old_alerts.c.last_error,
        ).order_by(old_alerts.c.id)
    ).all()
    attempts_before = _old_attempts(connection)
    op.execute(
        f"CREATE TABLE {STAGING} AS SELECT id AS alert_id, message_id, subject, "
        "message, created_at FROM alerts"
    )
    op.drop_index("ix_alert_deliveries_alert_id", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    _rebuild_alerts()
    _create_messages()
    _create_deliveries()

    connection.execute(
        messages.insert().from_select(
            ["alert_id", "sequence", "reason", "message_id", "subject", "message"]
            + ["created_at"],
            sa.select(
                staging.c.alert_id,
                sa.literal(0),
                sa.literal("new"),
                staging.c.message_id,
                staging.c.subject,
                staging.c.message,
                staging.c.created_at,
            ),
        )
    )
    op.drop_table(STAGING)
    _copy_deliveries(connection, alerts_before, attempts_before)


def _old_attempts(connection: sa.Connection) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    statement = sa.select(old_deliveries).order_by(old_deliveries.c.attempted_at)
    for row in connection.execute(statement):
        found[row.alert_id].append(row)
    return found


def _rebuild_alerts() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("ck_alerts_status", type_="check")
        batch.drop_constraint("uq_alerts_message_id", type_="unique")
        for name in OLD_ALERT_COLUMNS:
            batch.drop_column(name)
        batch.add_column(sa.Column("deadline", TIME, nullable=True))
        batch.add_column(sa.Column("acknowledged_at", TIME, nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "escalation_tier",
                sa.Integer(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.add_column(sa.Column("updated_at", TIME, nullable=True))
    op.get_bind().execute(
        old_alerts.update().values(status="open", updated_at=old_alerts.c.created_at)
    )
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("updated_at", existing_type=TIME, nullable=False)
        batch.create_check_constraint("status", NEW_ALERT_STATUSES)


def _create_messages() -> None:
    op.create_table(
        "alert_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("in_reply_to", sa.Text(), nullable=True),
        sa.Column("references", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_messages_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_messages"),
        sa.UniqueConstraint(
            "alert_id", "sequence", name="uq_alert_messages_alert_id_sequence"
        ),
        sa.UniqueConstraint("message_id", name="uq_alert_messages_message_id"),
    )


def _create_deliveries() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_message_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint(CHANNELS, name="channel"),
        sa.CheckConstraint(DELIVERY_STATUSES, name="status"),
        sa.ForeignKeyConstraint(
            ["alert_message_id"],
            ["alert_messages.id"],
            name="fk_alert_deliveries_alert_message_id_alert_messages",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.UniqueConstraint(
            "alert_message_id",
            "channel",
            "recipient",
            name="uq_alert_deliveries_alert_message_id_channel_recipient",
        ),
    )
    op.create_index(
        "ix_alert_deliveries_status_next_attempt_at",
        "alert_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", ID, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempted_at", TIME, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["alert_deliveries.id"],
            name="fk_delivery_attempts_delivery_id_alert_deliveries",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index(
        "ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"]
    )


def _copy_deliveries(
    connection: sa.Connection,
    alerts_before: Sequence[Any],
    attempts_before: dict[int, list[Any]],
) -> None:
    """Add a delivery per recipient of each old alert, then copy its attempts."""
    message_of = dict(
        connection.execute(sa.select(messages.c.alert_id, messages.c.id)).all()
    )
    rows = []
    for alert in alerts_before:
        rows += _delivery_rows(alert, message_of[alert.id], attempts_before[alert.id])
    _insert_chunked(connection, deliveries, rows)

    delivery_ids: dict[int, list[int]] = defaultdict(list)
    statement = sa.select(deliveries.c.alert_message_id, deliveries.c.id)
    for message_id, delivery_id in connection.execute(statement):
        delivery_ids[message_id].append(delivery_id)
    attempt_rows = [
        _attempt_row(delivery_id, attempt)
        for alert_id, old in attempts_before.items()
        for attempt in old
        for delivery_id in delivery_ids[message_of[alert_id]]
    ]
    _insert_chunked(connection, attempts, attempt_rows)


def _delivery_rows(alert: Any, message_id: int, old: list[Any]) -> list[dict]:
    channel = old[-1].channel if old else "eml"
    addresses: dict[str, str] = {}
    for recipient in alert.recipients or ():
        address = parseaddr(recipient)[1] or recipient
        addresses.setdefault(address.lower(), address)
    return [
        {
            "alert_message_id": message_id,
            "channel": channel,
            "recipient": address,
            "status": alert.status,
            "attempts": alert.attempts,
            "next_attempt_at": alert.created_at if alert.status == "pending" else None,
            "last_error": alert.last_error,
            "sent_at": alert.sent_at,
            "created_at": alert.created_at,
        }
        for address in addresses.values()
    ]


def _attempt_row(delivery_id: int, attempt: Any) -> dict[str, Any]:
    detail = attempt.detail or ""
    if attempt.target and attempt.target not in detail:
        detail = f"{attempt.target}: {detail}" if detail else attempt.target
    return {
        "delivery_id": delivery_id,
        "attempted_at": attempt.attempted_at,
        "ok": attempt.status == "sent",
        "code": None,
        "detail": detail,
    }


def _insert_chunked(connection: sa.Connection, table: Any, rows: list[dict]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        connection.execute(table.insert(), rows[start : start + INSERT_CHUNK])


def downgrade() -> None:
    connection = op.get_bind()
    mail = _first_mail_deliveries(connection)
    old_attempts = _mail_attempts(connection)
    op.execute(
        f"CREATE TABLE {STAGING} AS SELECT alert_id, message_id, subject, message, "
        "created_at FROM alert_messages WHERE sequence = 0"
    )
    op.drop_index("ix_delivery_attempts_delivery_id", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index(
        "ix_alert_deliveries_status_next_attempt_at", table_name="alert_deliveries"
    )
    op.drop_table("alert_deliveries")
    op.drop_table("alert_messages")
    _restore_alerts(connection, mail)
    op.drop_table(STAGING)
    _restore_attempt_log(connection, old_attempts)


def _first_mail_deliveries(connection: sa.Connection) -> dict[int, list[Any]]:
    """Return the mail deliveries of each alert's first message, by alert id."""
    statement = (
        sa.select(messages.c.alert_id, deliveries)
        .join(messages, messages.c.id == deliveries.c.alert_message_id)
        .where(messages.c.sequence == 0, deliveries.c.channel.in_(MAIL_CHANNELS))
        .order_by(deliveries.c.id)
    )
    found: dict[int, list[Any]] = defaultdict(list)
    for row in connection.execute(statement):
        found[row.alert_id].append(row)
    return found


def _mail_attempts(connection: sa.Connection) -> list[dict[str, Any]]:
    """Return the attempts of first-message mail deliveries, one per alert and time.

    An attempt that served several recipients was recorded once per
    recipient, and the old log had one row for all of them.
    """
    statement = (
        sa.select(
            messages.c.alert_id,
            deliveries.c.channel,
            attempts.c.attempted_at,
            attempts.c.ok,
            attempts.c.detail,
        )
        .join(deliveries, deliveries.c.id == attempts.c.delivery_id)
        .join(messages, messages.c.id == deliveries.c.alert_message_id)
        .where(messages.c.sequence == 0, deliveries.c.channel.in_(MAIL_CHANNELS))
        .order_by(attempts.c.attempted_at)
    )
    rows: dict[tuple, dict[str, Any]] = {}
    for row in connection.execute(statement):
        key = (row.alert_id, row.channel, row.attempted_at, row.ok)
        rows.setdefault(
            key,
            {
                "alert_id": row.alert_id,
                "channel": row.channel,
                "target": "",
                "attempted_at": row.attempted_at,
                "status": "sent" if row.ok else "failed",
                "detail": row.detail,
            },
        )
    return list(rows.values())


def _restore_alerts(connection: sa.Connection, mail: dict[int, list[Any]]) -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("status", type_="check")
        for name in NEW_ALERT_COLUMNS:
            batch.drop_column(name)
        batch.add_column(sa.Column("recipients", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_attempt_at", TIME, nullable=True))
        batch.add_column(sa.Column("sent_at", TIME, nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))

    first = sa.select(staging).where(staging.c.alert_id == old_alerts.c.id)
    fallback_id = (
        sa.literal("<alert-")
        + sa.cast(old_alerts.c.id, sa.String)
        + sa.literal("@fenghuo.localhost>")
    )
    connection.execute(
        old_alerts.update().values(
            message_id=sa.func.coalesce(
                first.with_only_columns(staging.c.message_id).scalar_subquery(),
                fallback_id,
            ),
            message=sa.func.coalesce(
                first.with_only_columns(staging.c.message).scalar_subquery(), ""
            ),
        )
    )
    _restore_delivery_state(connection, mail)

    with op.batch_alter_table("alerts") as batch:
        for name, kind in (
            ("recipients", sa.JSON()),
            ("message_id", sa.String(255)),
            ("message", sa.Text()),
            ("attempts", sa.Integer()),
        ):
            batch.alter_column(name, existing_type=kind, nullable=False)
        batch.create_unique_constraint("uq_alerts_message_id", ["message_id"])
        batch.create_check_constraint("ck_alerts_status", OLD_ALERT_STATUSES)


def _restore_delivery_state(
    connection: sa.Connection, mail: dict[int, list[Any]]
) -> None:
    """Set each alert's recipients and its pending, sent or failed status.

    The alert is sent when any mail delivery was sent, failed when every one
    failed or is unconfirmed (the old schema had no such state, and failed
    is the one that is never sent again), and pending otherwise.
    """
    alert_ids = connection.execute(sa.select(old_alerts.c.id)).scalars().all()
    statement = (
        old_alerts.update()
        .where(old_alerts.c.id == sa.bindparam("b_id"))
        .values(
            recipients=sa.bindparam("b_recipients"),
            status=sa.bindparam("b_status"),
            attempts=sa.bindparam("b_attempts"),
            sent_at=sa.bindparam("b_sent_at"),
            last_error=sa.bindparam("b_last_error"),
        )
    )
    rows = [_old_state(alert_id, mail.get(alert_id, [])) for alert_id in alert_ids]
    for start in range(0, len(rows), INSERT_CHUNK):
        connection.execute(statement, rows[start : start + INSERT_CHUNK])


def _old_state(alert_id: int, rows: list[Any]) -> dict[str, Any]:
    statuses = {row.status for row in rows}
    if "sent" in statuses:
        status = "sent"
    elif rows and statuses <= {"failed", "unconfirmed"}:
        status = "failed"
    else:
        status = "pending"
    sent = [row.sent_at for row in rows if row.sent_at is not None]
    errors = [row.last_error for row in rows if row.last_error]
    return {
        "b_id": alert_id,
        "b_recipients": [row.recipient for row in rows],
        "b_status": status,
        "b_attempts": max((row.attempts for row in rows), default=0),
        "b_sent_at": min(sent) if sent else None,
        "b_last_error": errors[-1] if errors else None,
    }


def _restore_attempt_log(
    connection: sa.Connection, old_attempts: list[dict[str, Any]]
) -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("attempted_at", TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'failed')", name="ck_alert_deliveries_status"
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_deliveries_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])
    _insert_chunked(connection, old_deliveries, old_attempts)
    last_attempts: dict[int, Any] = {}
    for row in old_attempts:
        last_attempts[row["alert_id"]] = row["attempted_at"]
    if last_attempts:
        connection.execute(
            old_alerts.update()
            .where(old_alerts.c.id == sa.bindparam("b_id"))
            .values(last_attempt_at=sa.bindparam("b_time")),
            [{"b_id": i, "b_time": t} for i, t in last_attempts.items()],
        )
