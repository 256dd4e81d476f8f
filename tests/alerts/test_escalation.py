"""Escalation of unacknowledged alerts, on SQLite and PostgreSQL, with
the escalation mails received by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smtp_server import MailServer, free_port, parse, start_server
from stored_alerts import add_stored_alert
from test_outbox import PASSWORD

from alerts import policy
from alerts.cards import card_to_json
from alerts.escalation import escalate_due, escalation_message
from alerts.outbox import Senders, deliver_due
from alerts.robots import AlertCard
from alerts.senders import SmtpSender
from config import Config, Robot, Smtp, load
from job import Job
from storage import Store

ROOT = Path(__file__).resolve().parents[2]
CREATED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DEADLINE = CREATED + timedelta(hours=2)
SECRET = "ack-secret-for-tests"
CARD = AlertCard(
    level="critical",
    kind="complaint",
    title="QC7 刹车失灵",
    reason="安全事件",
    factors=(("客户损失", 3, "刹车失灵"),),
    excerpt="QC7高速上刹车失灵。",
    author="车主",
    followers=10,
    reposts=5,
    post_url=None,
    review_url="http://127.0.0.1:8000/posts/1",
    deadline=DEADLINE,
)


def escalating_config(tmp_path: Path, **alerts) -> Config:
    """The shipped config with two escalation tiers for critical alerts."""
    config = load(ROOT / "config.yaml")
    settings = dataclasses.replace(
        config.alerts,
        outbox=str(tmp_path / "outbox"),
        escalation={"critical": (("executives",), ("government_affairs", "pr"))},
        **alerts,
    )
    return dataclasses.replace(config, alerts=settings)


def add_overdue_alert(store: Store, key: str = "post:1", level: str = "critical"):
    return add_stored_alert(
        store,
        key,
        subject="[烽火·危机] 投诉 | QC7 | 刹车失灵",
        created=CREATED,
        deadline=DEADLINE,
        level=level,
        card=card_to_json(CARD),
    )


def test_each_tier_notified_once(store, tmp_path):
    config = escalating_config(tmp_path)
    alert_id = add_overdue_alert(store)

    before = escalate_due(store, config, DEADLINE - timedelta(minutes=1))
    first = escalate_due(store, config, DEADLINE + timedelta(minutes=1))
    again = escalate_due(store, config, DEADLINE + timedelta(minutes=2))
    second = escalate_due(store, config, DEADLINE + timedelta(hours=2))
    done = escalate_due(store, config, DEADLINE + timedelta(hours=9))

    assert before == []
    assert first == [alert_id]
    assert again == []
    assert second == [alert_id]
    assert done == []
    detail = store.get_alert(alert_id)
    assert detail.alert.escalation_tier == 2
    assert [m.reason for m in detail.messages] == ["new", "escalation", "escalation"]
    tier_one = {
        d.recipient for d in detail.deliveries if d.message == detail.messages[1].id
    }
    tier_two = {
        d.recipient for d in detail.deliveries if d.message == detail.messages[2].id
    }
    assert tier_one == {"exec@qicheng.example"}
    assert tier_two == {"ga@qicheng.example", "pr@qicheng.example"}


def test_acknowledged_alert_not_escalated(store, tmp_path):
    config = escalating_config(tmp_path)
    alert_id = add_overdue_alert(store)
    store.acknowledge_alert(alert_id, "wang", now=DEADLINE - timedelta(minutes=5))

    escalated = escalate_due(store, config, DEADLINE + timedelta(hours=5))

    assert escalated == []
    assert len(store.get_alert(alert_id).messages) == 1


def test_level_without_tiers_not_escalated(store, tmp_path):
    config = escalating_config(tmp_path)
    alert_id = add_overdue_alert(store, level="medium")

    assert escalate_due(store, config, DEADLINE + timedelta(hours=5)) == []
    assert store.get_alert(alert_id).alert.escalation_tier == 0


def test_second_writer_of_a_tier_stores_nothing(store, tmp_path):
    config = escalating_config(tmp_path)
    alert_id = add_overdue_alert(store)
    now = DEADLINE + timedelta(minutes=1)
    # Two jobs that read the alert at tier 0 both try to escalate it.
    message = escalation_message(store.get_alert(alert_id), 0, config, now)

    first = store.escalate_alert(alert_id, 0, message, now=now)
    second = store.escalate_alert(alert_id, 0, message, now=now)

    assert first is not None
    assert second is None
    detail = store.get_alert(alert_id)
    assert detail.alert.escalation_tier == 1
    assert len(detail.messages) == 2


def test_escalation_to_robots_of_the_level(store, tmp_path):
    robot = Robot(name="pr-group", kind="feishu", url_env="X", levels=("critical",))
    config = escalating_config(tmp_path, robots=(robot,))
    alert_id = add_overdue_alert(store)

    escalate_due(store, config, DEADLINE + timedelta(minutes=1))

    detail = store.get_alert(alert_id)
    escalation = detail.messages[1]
    targets = {
        (d.channel, d.recipient)
        for d in detail.deliveries
        if d.message == escalation.id
    }
    assert ("feishu", "pr-group") in targets
    assert escalation.card["title"].startswith("【升级·无人确认】")


def test_escalation_mail_replies_in_thread(store, tmp_path, monkeypatch):
    monkeypatch.setenv("FENGHUO_ACK_SECRET", SECRET)
    server = MailServer()
    port = free_port()
    controller = start_server(server, port)
    smtp = Smtp(host="127.0.0.1", port=port, security="none", timeout_seconds=5)
    config = escalating_config(tmp_path, smtp=smtp)
    alert_id = add_overdue_alert(store)
    now = DEADLINE + timedelta(minutes=1)
    try:
        escalate_due(store, config, now)
        with Senders(mail=SmtpSender(smtp, password=PASSWORD)) as senders:
            report = deliver_due(store, senders, now, jitter=lambda: 0.0)
    finally:
        controller.stop()

    first = store.get_alert(alert_id).messages[0]
    assert report.sent == 1
    [envelope] = server.envelopes
    assert envelope.rcpt_tos == ["exec@qicheng.example"]
    received = parse(envelope.content)
    assert received["Subject"] == "Re: [烽火·危机] 投诉 | QC7 | 刹车失灵"
    assert received["In-Reply-To"] == first.message_id
    assert received["References"] == first.message_id
    body = received.get_content()
    assert "超过首次响应时限仍无人确认" in body
    assert "第 1 级：管理层" in body
    [link] = re.findall(r"http://127\.0\.0\.1:8000/alerts/\d+/ack\?token=\w+", body)
    token = link.rpartition("token=")[2]
    assert link.startswith(f"http://127.0.0.1:8000/alerts/{alert_id}/ack")
    assert policy.ack_token_valid(SECRET, alert_id, token)


def test_escalation_without_secret_names_command(store, tmp_path, monkeypatch):
    monkeypatch.delenv("FENGHUO_ACK_SECRET", raising=False)
    config = escalating_config(tmp_path)
    alert_id = add_overdue_alert(store)

    escalate_due(store, config, DEADLINE + timedelta(minutes=1))

    mail = parse(store.get_alert(alert_id).messages[1].message.encode("ascii"))
    body = mail.get_content()
    assert "/ack?token=" not in body
    assert f"python pipeline.py alerts ack {alert_id}" in body


def test_job_escalates_and_skips_when_stopping(tmp_path, database_url):
    config = dataclasses.replace(
        escalating_config(tmp_path),
        classifier="lexicon",
        storage=dataclasses.replace(
            load(ROOT / "config.yaml").storage, url=database_url
        ),
    )
    with Store(database_url) as store:
        store.migrate()
        alert_id = add_overdue_alert(store)
        job = Job(config, store)
        job.stop.set()
        while_stopping = job.escalate()
        job.stop.clear()
        escalated = job.escalate()
        tier = store.get_alert(alert_id).alert.escalation_tier

    assert while_stopping == 0
    assert escalated == 1
    assert tier == 1


@pytest.mark.parametrize("secret", [SECRET, ""])
def test_first_mail_carries_ack_link(tmp_path, database_url, monkeypatch, secret):
    from test_outbox import robot_config

    monkeypatch.setenv("FENGHUO_ACK_SECRET", secret)
    config = load(robot_config(tmp_path, database_url))
    config = dataclasses.replace(
        config, alerts=dataclasses.replace(config.alerts, robots=())
    )
    from job import run_once

    with Store(database_url) as store:
        store.migrate()
        run_once(config, store)
        [summary] = store.list_alerts()
        first = store.get_alert(summary.alert.id).messages[0]

    body = parse(first.message.encode("ascii")).get_body(("plain",)).get_content()
    if secret:
        token = policy.ack_token(secret, summary.alert.id)
        expected = f"/alerts/{summary.alert.id}/ack?token={token}"
        assert f"确认收到（停止升级）：http://127.0.0.1:8000{expected}" in body
    else:
        assert "/ack?token=" not in body
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert eml.read_bytes().decode("ascii") == first.message
