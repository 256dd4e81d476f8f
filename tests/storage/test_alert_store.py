"""Alerts, their messages and deliveries in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from storage import (
    AttemptOutcome,
    NewAlert,
    NewDelivery,
    NewMessage,
    Store,
    create_store_engine,
)
from storage.engine import downgrade, upgrade
from storage.search import include_name
from storage.tables import (
    alert_deliveries,
    alert_messages,
    alerts,
    delivery_attempts,
    metadata,
)

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
CARD = {"level": "critical", "title": "QC7 刹车失灵"}


def make_message(
    key: str,
    *,
    message_id: str | None = None,
    deliveries: tuple[NewDelivery, ...] | None = None,
    reason: str = "new",
) -> NewMessage:
    if deliveries is None:
        deliveries = (
            NewDelivery("smtp", "pr@qicheng.example"),
            NewDelivery("smtp", "exec@qicheng.example"),
            NewDelivery("dingtalk", "pr-group"),
        )
    return NewMessage(
        reason=reason,
        message_id=message_id or f"<{key}@fenghuo.localhost>",
        subject=f"【危机】{key}",
        message=f"Message-ID: <{key}>\r\nSubject: {key}\r\n\r\nbody\r\n",
        deliveries=deliveries,
        card=CARD,
    )


def make_alert(key: str, **options) -> NewAlert:
    return NewAlert(
        post_id=None,
        dedup_key=key,
        level="critical",
        kind="complaint",
        subject=f"【危机】{key}",
        message=make_message(key, **options),
        deadline=T0 + timedelta(hours=1),
    )


def count_rows(store: Store, table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def claim_mail(store: Store, now: datetime = T0, **options):
    return store.claim_deliveries(now, mail_channel="smtp", **options)


# Adding alerts and messages


def test_add_alert_stores_first_message(store: Store) -> None:
    [alert_id] = store.add_alerts([make_alert("k1")], now=T0)

    detail = store.get_alert(alert_id)

    assert detail.alert.dedup_key == "k1"
    assert detail.alert.status == "open"
    assert detail.alert.deadline == T0 + timedelta(hours=1)
    assert detail.alert.escalation_tier == 0
    assert detail.alert.acknowledged_at is None
    assert detail.alert.created_at == T0
    assert detail.alert.updated_at == T0
    [message] = detail.messages
    assert message.sequence == 0
    assert message.reason == "new"
    assert message.message_id == "<k1@fenghuo.localhost>"
    assert message.message.endswith("body\r\n")
    assert message.card == CARD
    assert message.in_reply_to is None
    targets = [(d.channel, d.recipient, d.status) for d in detail.deliveries]
    assert targets == [
        ("smtp", "pr@qicheng.example", "pending"),
        ("smtp", "exec@qicheng.example", "pending"),
        ("dingtalk", "pr-group", "pending"),
    ]
    assert {d.next_attempt_at for d in detail.deliveries} == {T0}
    assert {d.attempts for d in detail.deliveries} == {0}


def test_acknowledge_marks_open_alert_once(store: Store) -> None:
    [alert_id] = store.add_alerts([make_alert("k1")], now=T0)

    assert store.acknowledge_alert(alert_id, "李娜", now=T0 + timedelta(minutes=5))
    assert not store.acknowledge_alert(alert_id, "王强", now=T0 + timedelta(minutes=9))

    alert = store.get_alert(alert_id).alert
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == "李娜"
    assert alert.acknowledged_at == T0 + timedelta(minutes=5)
    assert alert.updated_at == T0 + timedelta(minutes=5)


def test_acknowledge_unknown_alert_or_nobody(store: Store) -> None:
    [alert_id] = store.add_alerts([make_alert("k1")], now=T0)

    with pytest.raises(LookupError, match="alert 999 not found"):
        store.acknowledge_alert(999, "李娜")
    with pytest.raises(ValueError, match="name of who acknowledged"):
        store.acknowledge_alert(alert_id, "  ")
    assert store.get_alert(alert_id).alert.status == "open"


def test_add_alerts_skips_known_key(store: Store) -> None:
    first = store.add_alerts([make_alert("k1"), make_alert("k2"), make_alert("k1")])
    second = store.add_alerts([make_alert("k2"), make_alert("k3")])

    assert first[0] is not None
    assert first[1] is not None
    assert first[2] is None
    assert second[0] is None
    assert second[1] is not None
    assert count_rows(store, alert_messages) == 3
    assert count_rows(store, alert_deliveries) == 9


def test_add_alerts_conflicting_message_id(store: Store) -> None:
    store.add_alerts([make_alert("k1", message_id="<same@fenghuo>")])

    with pytest.raises(IntegrityError):
        store.add_alerts(
            [make_alert("k2"), make_alert("k3", message_id="<same@fenghuo>")]
        )

    assert [s.alert.dedup_key for s in store.list_alerts()] == ["k1"]
    assert count_rows(store, alert_deliveries) == 3


def test_add_alerts_rejects_unknown_channel(store: Store) -> None:
    fax = (NewDelivery("fax", "+86 10 1234"),)

    with pytest.raises(ValueError, match="unknown delivery channel 'fax'"):
        store.add_alerts([make_alert("k1"), make_alert("k2", deliveries=fax)])

    assert count_rows(store, alerts) == 0


def test_add_message_numbers_in_order(store: Store) -> None:
    [alert_id] = store.add_alerts([make_alert("k1")], now=T0)
    later = T0 + timedelta(minutes=30)
    update = NewMessage(
        reason="level raised",
        message_id="<k1-1@fenghuo.localhost>",
        subject="Re: 【危机】k1",
        message="Subject: Re\r\n\r\nmore\r\n",
        deliveries=(NewDelivery("smtp", "pr@qicheng.example"),),
        in_reply_to="<k1@fenghuo.localhost>",
        references="<k1@fenghuo.localhost>",
    )

    message_id = store.add_message(alert_id, update, now=later)

    detail = store.get_alert(alert_id)
    assert [m.sequence for m in detail.messages] == [0, 1]
    assert detail.messages[1].id == message_id
    assert detail.messages[1].in_reply_to == "<k1@fenghuo.localhost>"
    assert detail.messages[1].card is None
    assert detail.alert.updated_at == later
    assert [d.message for d in detail.deliveries][-1] == message_id
    assert store.list_alerts()[0].messages == 2


def test_add_message_unknown_alert(store: Store) -> None:
    with pytest.raises(LookupError, match="alert 999 not found"):
        store.add_message(999, make_message("k9"))

    assert count_rows(store, alert_messages) == 0


# Claiming and recording


def test_claim_marks_due_deliveries_sending(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    store.add_alerts([make_alert("k2")], now=T0 + timedelta(minutes=5))

    early = claim_mail(store, T0 - timedelta(seconds=1))
    claimed = claim_mail(store, T0 + timedelta(minutes=1))
    again = claim_mail(store, T0 + timedelta(minutes=1))

    assert early.deliveries == ()
    assert [d.recipient for d in claimed.deliveries] == [
        "pr@qicheng.example",
        "exec@qicheng.example",
    ]
    [message] = claimed.messages.values()
    assert message.message_id == "<k1@fenghuo.localhost>"
    assert [a.dedup_key for a in claimed.alerts.values()] == ["k1"]
    assert again.deliveries == ()
    statuses = {d.recipient: d.status for d in store.get_alert(1).deliveries}
    assert statuses["pr@qicheng.example"] == "sending"
    assert statuses["pr-group"] == "pending"


def test_claim_only_configured_channels(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)

    eml = store.claim_deliveries(T0, mail_channel="eml")
    other_robot = store.claim_deliveries(
        T0, mail_channel=None, robots=[("dingtalk", "ops-group")]
    )
    robot = store.claim_deliveries(
        T0, mail_channel=None, robots=[("dingtalk", "pr-group")]
    )

    assert eml.deliveries == ()
    assert other_robot.deliveries == ()
    assert [(d.channel, d.recipient) for d in robot.deliveries] == [
        ("dingtalk", "pr-group")
    ]


def test_claim_oldest_messages_first(store: Store) -> None:
    for minute in (2, 0, 1):
        store.add_alerts([make_alert(f"k{minute}")], now=T0 + timedelta(minutes=minute))

    first = claim_mail(store, T0 + timedelta(hours=1), max_messages=2)

    subjects = sorted(m.subject for m in first.messages.values())
    assert subjects == ["【危机】k0", "【危机】k1"]
    assert len(first.deliveries) == 4


def test_record_attempt_outcomes(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    sent, retried = claim_mail(store).deliveries
    later = T0 + timedelta(seconds=30)

    store.record_attempts(
        [
            AttemptOutcome(sent.id, "sent", "127.0.0.1:25"),
            AttemptOutcome(retried.id, "pending", "451 try later", 451, later),
        ],
        T0,
    )

    deliveries = {d.id: d for d in store.get_alert(1).deliveries}
    assert deliveries[sent.id].status == "sent"
    assert deliveries[sent.id].sent_at == T0
    assert deliveries[sent.id].attempts == 1
    assert deliveries[retried.id].status == "pending"
    assert deliveries[retried.id].next_attempt_at == later
    assert deliveries[retried.id].last_code == 451
    assert deliveries[retried.id].last_error == "451 try later"
    assert claim_mail(store, later - timedelta(seconds=1)).deliveries == ()
    assert [d.id for d in claim_mail(store, later).deliveries] == [retried.id]
    assert count_rows(store, delivery_attempts) == 2


def test_record_permanent_failure(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    failed, _ = claim_mail(store).deliveries

    store.record_attempts(
        [AttemptOutcome(failed.id, "failed", "554 rejected", 554)], T0
    )

    record = {d.id: d for d in store.get_alert(1).deliveries}[failed.id]
    assert record.status == "failed"
    assert record.last_code == 554
    assert record.next_attempt_at is None
    [summary] = store.list_alerts()
    assert summary.mail_failed
    assert summary.delivery_state == "mail failed"
    assert store.status().failed_alerts == 1


def test_record_rejects_unclaimed_delivery(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    claimed = claim_mail(store).deliveries
    robot = store.get_alert(1).deliveries[2]

    with pytest.raises(LookupError, match=f"delivery {robot.id} is not being sent"):
        store.record_attempts(
            [
                AttemptOutcome(claimed[0].id, "sent"),
                AttemptOutcome(robot.id, "sent"),
            ],
            T0,
        )

    assert count_rows(store, delivery_attempts) == 0
    assert store.get_alert(1).deliveries[0].status == "sending"


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (AttemptOutcome(1, "pending", "timed out"), "a pending outcome needs"),
        (AttemptOutcome(1, "sent", next_attempt_at=T0), "a pending outcome needs"),
        (AttemptOutcome(1, "unconfirmed"), "invalid outcome status 'unconfirmed'"),
    ],
)
def test_record_rejects_invalid_outcome(store: Store, outcome, message) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    claim_mail(store)

    with pytest.raises(ValueError, match=message):
        store.record_attempts([outcome], T0)


def test_release_returns_to_pending(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    claimed = claim_mail(store).deliveries

    store.release_deliveries([d.id for d in claimed])

    assert [d.id for d in claim_mail(store).deliveries] == [d.id for d in claimed]
    assert count_rows(store, delivery_attempts) == 0


def test_mark_unconfirmed_stops_resending(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    claimed = claim_mail(store).deliveries

    marked = store.mark_unconfirmed(T0)

    assert marked == sorted(d.id for d in claimed)
    assert claim_mail(store, T0 + timedelta(days=1)).deliveries == ()
    statuses = [d.status for d in store.get_alert(1).deliveries]
    assert statuses == ["unconfirmed", "unconfirmed", "pending"]
    assert store.list_alerts()[0].delivery_state == "unconfirmed"
    assert store.status().unconfirmed_alerts == 1
    assert count_rows(store, delivery_attempts) == 2
    assert store.mark_unconfirmed(T0) == []


def test_delivery_state_of_alerts(store: Store) -> None:
    store.add_alerts([make_alert(f"k{i}") for i in range(3)], now=T0)
    claimed = store.claim_deliveries(
        T0, mail_channel="smtp", robots=[("dingtalk", "pr-group")], max_messages=2
    )
    robot_failed = [d for d in claimed.deliveries if d.channel == "dingtalk"][0]
    outcomes = [
        AttemptOutcome(d.id, "failed", "310000 sign not match", 310000)
        if d.id == robot_failed.id
        else AttemptOutcome(d.id, "sent")
        for d in claimed.deliveries
    ]
    store.record_attempts(outcomes, T0)

    states = {s.alert.dedup_key: s.delivery_state for s in store.list_alerts()}

    sent_alert = {d.message for d in claimed.deliveries} - {robot_failed.message}
    assert len(sent_alert) == 1
    assert sorted(states.values()) == ["pending", "robot failed", "sent"]
    assert states["k2"] == "pending"
    assert [s.alert.dedup_key for s in store.list_alerts(limit=2)] == ["k2", "k1"]
    assert [s.alert.dedup_key for s in store.list_alerts(before=2)] == ["k0"]
    assert store.list_alerts(status="closed") == []


def test_move_pending_mail_to_configured_channel(store: Store) -> None:
    store.add_alerts([make_alert("k1")], now=T0)
    [sent, _, _] = store.get_alert(1).deliveries
    store.claim_deliveries(T0, mail_channel="smtp", max_messages=1)
    store.record_attempts(
        [
            AttemptOutcome(sent.id, "sent"),
            AttemptOutcome(sent.id + 1, "pending", "timed out", None, T0),
        ],
        T0,
    )
    both = NewMessage(
        reason="resend",
        message_id="<k1-again@fenghuo.localhost>",
        subject="k1",
        message="Subject: k1\r\n\r\nbody\r\n",
        deliveries=(
            NewDelivery("smtp", "pr@qicheng.example"),
            NewDelivery("eml", "pr@qicheng.example"),
        ),
    )
    store.add_message(1, both, now=T0)

    moved = store.move_pending_mail("eml")

    channels = [(d.channel, d.status) for d in store.get_alert(1).deliveries]
    assert moved == 1
    assert channels == [
        ("smtp", "sent"),
        ("eml", "pending"),
        ("dingtalk", "pending"),
        ("smtp", "pending"),
        ("eml", "pending"),
    ]
    with pytest.raises(ValueError, match="unknown mail channel 'fax'"):
        store.move_pending_mail("fax")


# Migration 0010


def fill_0009_alerts(url: str) -> None:
    """Store three alerts in a database at revision 0009: sent, failed, pending."""
    engine = create_store_engine(url)
    try:
        upgrade(engine, "0009")
        insert_alert = text(
            "INSERT INTO alerts (dedup_key, level, kind, subject, recipients, "
            "message_id, message, status, attempts, created_at, sent_at, last_error) "
            "VALUES (:key, 'critical', 'complaint', :subject, :recipients, :mid, "
            ":message, :status, :attempts, :created, :sent, :error)"
        ).bindparams(
            bindparam("created", type_=DateTime(timezone=True)),
            bindparam("sent", type_=DateTime(timezone=True)),
        )
        insert_attempt = text(
            "INSERT INTO alert_deliveries (alert_id, channel, target, attempted_at, "
            "status, detail) VALUES (:alert, :channel, :target, :at, :status, :detail)"
        ).bindparams(bindparam("at", type_=DateTime(timezone=True)))
        created = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        with engine.begin() as connection:
            for key, status, attempts, recipients in (
                ("sent", "sent", 2, '["公关部 <pr@q.example>", "ops@q.example"]'),
                ("failed", "failed", 1, '["pr@q.example"]'),
                ("pending", "pending", 0, '["pr@q.example"]'),
            ):
                connection.execute(
                    insert_alert,
                    {
                        "key": key,
                        "subject": key,
                        "recipients": recipients,
                        "mid": f"<{key}@q.example>",
                        "message": f"Subject: {key}\r\n\r\n正文\r\n",
                        "status": status,
                        "attempts": attempts,
                        "created": created,
                        "sent": created if status == "sent" else None,
                        "error": "550 no such user" if status == "failed" else None,
                    },
                )
            for alert, channel, status, detail in (
                (1, "smtp", "failed", "timed out"),
                (1, "smtp", "sent", "127.0.0.1:25"),
                (2, "eml", "failed", "550 no such user"),
            ):
                connection.execute(
                    insert_attempt,
                    {
                        "alert": alert,
                        "channel": channel,
                        "target": "127.0.0.1:25",
                        "at": created,
                        "status": status,
                        "detail": detail,
                    },
                )
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_alerts(database_url: str) -> None:
    fill_0009_alerts(database_url)

    with Store(database_url) as store:
        store.migrate()
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []
        sent, failed, pending = (store.get_alert(i) for i in (1, 2, 3))

        assert {sent.alert.status, failed.alert.status, pending.alert.status} == {
            "open"
        }
        assert sent.messages[0].message_id == "<sent@q.example>"
        assert sent.messages[0].message == "Subject: sent\r\n\r\n正文\r\n"
        assert [(d.channel, d.recipient, d.status) for d in sent.deliveries] == [
            ("smtp", "pr@q.example", "sent"),
            ("smtp", "ops@q.example", "sent"),
        ]
        assert [d.attempts for d in sent.deliveries] == [2, 2]
        assert failed.deliveries[0].status == "failed"
        assert failed.deliveries[0].last_error == "550 no such user"
        assert count_rows(store, delivery_attempts) == 5
        assert pending.deliveries[0].channel == "eml"
        now = datetime.now(UTC)
        claimed = store.claim_deliveries(now, mail_channel="eml")
        assert [d.id for d in claimed.deliveries] == [pending.deliveries[0].id]
        assert store.add_alerts([make_alert("sent")]) == [None]


def test_downgrade_keeps_first_messages(database_url: str) -> None:
    fill_0009_alerts(database_url)
    with Store(database_url) as store:
        store.migrate()
        store.add_message(1, make_message("sent-update"))
        downgrade(store.engine, "0009")

        with store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT dedup_key, status, recipients, message_id, attempts "
                    "FROM alerts ORDER BY id"
                )
            ).all()
            attempts = connection.execute(
                text("SELECT alert_id, status FROM alert_deliveries ORDER BY id")
            ).all()

        statuses = [(row.dedup_key, row.status, row.message_id) for row in rows]
        assert statuses == [
            ("sent", "sent", "<sent@q.example>"),
            ("failed", "failed", "<failed@q.example>"),
            ("pending", "pending", "<pending@q.example>"),
        ]
        assert [row.attempts for row in rows] == [2, 1, 0]
        assert [(a.alert_id, a.status) for a in attempts] == [
            (1, "failed"),
            (1, "sent"),
            (2, "failed"),
        ]
        store.migrate()
        assert [d.status for d in store.get_alert(1).deliveries] == ["sent", "sent"]


def test_overdue_query_uses_deadline_index(tmp_path):
    from storage.alert_store import overdue_statement

    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    store.migrate()
    statement = overdue_statement(datetime.now(UTC), {"critical": 2, "medium": 1}, 200)
    try:
        with store.engine.connect() as connection:
            compiled = statement.compile(connection)
            parameters = tuple(compiled.params[name] for name in compiled.positiontup)
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled), parameters
            ).all()
    finally:
        store.close()

    [step] = plan
    assert "USING INDEX ix_alerts_status_deadline" in step[3]
