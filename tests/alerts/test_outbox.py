"""The outbox against a real SMTP server (aiosmtpd) and loopback chat robots.

Every test runs on SQLite and PostgreSQL through the ``store`` fixture. The
clock moves by passing ``now`` to deliver_due, never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from fake_robots import FakeRobot, Reply
from smtp_server import MailServer, free_port, parse, start_server
from sqlalchemy import func, select

from alerts.cards import card_to_json
from alerts.mail import compose_notice
from alerts.outbox import (
    DeliveryReport,
    Senders,
    backoff_seconds,
    deliver_due,
    mail_deliveries,
)
from alerts.robots import AlertCard, RobotSender
from alerts.senders import EmlSender, SmtpSender, SmtpSession
from config import Http, Smtp, load
from job import run_once
from storage import NewAlert, NewDelivery, NewMessage, Store
from storage.tables import delivery_attempts

ROOT = Path(__file__).resolve().parents[2]
SENDER = "烽火预警 <fenghuo@alerts.example>"
LOGIN = "fenghuo@alerts.example"
PASSWORD = "s3cret"
RECIPIENTS = ("公关部 <pr@brand.example>", "cr@brand.example", "exec@brand.example")
HTTP = Http(connect_timeout_seconds=2.0, read_timeout_seconds=2.0)
SECRET = "SEC-test-secret-0123456789"
CARD = AlertCard(
    level="critical",
    kind="complaint",
    title="QC7 高速刹车失灵 已报警",
    reason="发生安全事件, 车主已报警",
    factors=(("客户损失", 3, "刹车失灵"), ("公共影响", 2, "转发 1,200")),
    excerpt="QC7高速上刹车失灵，差点追尾，已报警。",
    author="车主小王",
    followers=12345,
    reposts=678,
    post_url="https://weibo.example/p/1",
    review_url="http://127.0.0.1:8000/posts/1",
    deadline=datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
)


def smtp_settings(port: int, *, login: bool = True) -> Smtp:
    return Smtp(
        host="127.0.0.1",
        port=port,
        security="none",
        username=LOGIN if login else None,
        timeout_seconds=5,
    )


def add_alert(
    store: Store,
    key: str,
    *,
    recipients: tuple[str, ...] = RECIPIENTS,
    channel: str = "smtp",
    robots: tuple[tuple[str, str], ...] = (),
) -> int:
    now = datetime.now(UTC)
    composed = compose_notice(
        key,
        f"[烽火·危机] 投诉 {key}",
        "各位好，\n刹车失灵。\n",
        sender=SENDER,
        recipients=recipients,
        now=now,
    )
    deliveries = mail_deliveries(channel, recipients) if recipients else ()
    deliveries += tuple(NewDelivery(kind, name) for kind, name in robots)
    message = NewMessage(
        reason="new",
        message_id=composed.message_id,
        subject=composed.subject,
        message=composed.message,
        deliveries=deliveries,
        card=card_to_json(CARD),
    )
    alert = NewAlert(None, key, "critical", "complaint", composed.subject, message)
    [alert_id] = store.add_alerts([alert])
    return alert_id


def deliver(
    store: Store, port: int, now: datetime, *, sender=None, **options
) -> DeliveryReport:
    mail = sender or SmtpSender(smtp_settings(port), password=PASSWORD)
    with Senders(mail=mail) as senders:
        return deliver_due(store, senders, now, jitter=lambda: 0.0, **options)


def deliveries(store: Store, alert_id: int):
    return store.get_alert(alert_id).deliveries


def attempt_count(store: Store) -> int:
    with store.engine.connect() as connection:
        statement = select(func.count()).select_from(delivery_attempts)
        return connection.execute(statement).scalar_one()


def later(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


# SMTP


def test_every_recipient_gets_one_copy(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1")

    report = deliver(store, port, later(0))

    assert report.sent == 3
    [envelope] = server.envelopes
    assert envelope.mail_from == LOGIN
    assert sorted(envelope.rcpt_tos) == [
        "cr@brand.example",
        "exec@brand.example",
        "pr@brand.example",
    ]
    message = store.get_alert(alert_id).messages[0]
    received = parse(envelope.content)
    assert received["Message-ID"] == message.message_id
    assert received["Subject"] == "[烽火·危机] 投诉 k1"
    assert received["To"].addresses[0].display_name == "公关部"
    assert set(server.copies().values()) == {1}
    assert {d.status for d in deliveries(store, alert_id)} == {"sent"}
    assert deliver(store, port, later(60)).sent == 0
    assert len(server.envelopes) == 1


def test_one_connection_for_many_messages(store, mail_server):
    server, port = mail_server
    for number in range(5):
        add_alert(store, f"k{number}")

    report = deliver(store, port, later(0))

    assert report.sent == 15
    assert server.sessions == 1
    assert len(server.envelopes) == 5


def test_server_down_then_back_delivers_once(store):
    server = MailServer()
    port = free_port()
    alert_ids = [add_alert(store, f"k{number}") for number in range(3)]

    down = deliver(store, port, later(0))
    controller = start_server(server, port)
    try:
        too_early = deliver(store, port, later(0.1))
        back = deliver(store, port, later(2))
        again = deliver(store, port, later(120))
    finally:
        controller.stop()

    assert down.retrying == 9
    assert too_early.sent == 0
    assert back.sent == 9
    assert again.sent == 0
    assert len(server.copies()) == 9
    assert set(server.copies().values()) == {1}
    for alert_id in alert_ids:
        statuses = [d.status for d in deliveries(store, alert_id)]
        assert statuses == ["sent", "sent", "sent"]
        assert [d.attempts for d in deliveries(store, alert_id)] == [2, 2, 2]


def test_554_after_twenty_fails_rest_once(store, mail_server):
    server, port = mail_server
    server.data_reply = lambda n: "554 5.7.1 rejected as spam" if n > 20 else None
    alert_ids = [add_alert(store, f"k{number:02}") for number in range(25)]

    first = deliver(store, port, later(0))
    attempts_after_first = attempt_count(store)
    second = deliver(store, port, later(60))
    third = deliver(store, port, later(60 * 30))

    assert first.sent == 60
    assert first.failed == 15
    assert first.retrying == 0
    assert server.data_commands == 25
    assert second == DeliveryReport()
    assert third == DeliveryReport()
    assert attempt_count(store) == attempts_after_first == 75
    for alert_id in alert_ids[20:]:
        for delivery in deliveries(store, alert_id):
            assert delivery.status == "failed"
            assert delivery.last_code == 554
            assert delivery.attempts == 1
            assert "rejected as spam" in delivery.last_error
    summary = {s.alert.id: s for s in store.list_alerts(limit=30)}
    assert summary[alert_ids[-1]].delivery_state == "mail failed"
    assert summary[alert_ids[0]].delivery_state == "sent"


def test_451_retried_after_backoff(store, mail_server):
    server, port = mail_server
    server.data_reply = lambda n: "451 4.3.0 try again later" if n == 1 else None
    alert_id = add_alert(store, "k1", recipients=("pr@brand.example",))
    start = later(0)

    first = deliver(store, port, start)
    [retried] = deliveries(store, alert_id)
    before_due = deliver(store, port, start + timedelta(seconds=29))
    due = deliver(store, port, start + timedelta(seconds=30))

    assert first.retrying == 1
    assert retried.status == "pending"
    assert retried.last_code == 451
    assert retried.next_attempt_at == start + timedelta(seconds=30)
    assert before_due.sent == 0
    assert due.sent == 1
    assert server.data_commands == 2
    assert len(server.envelopes) == 1


def test_recipient_refused_550_other_accepted(store, mail_server):
    server, port = mail_server
    server.refuse["gone@brand.example"] = "550 5.1.1 no such user"
    alert_id = add_alert(
        store, "k1", recipients=("pr@brand.example", "gone@brand.example")
    )

    report = deliver(store, port, later(0))
    again = deliver(store, port, later(120))

    assert report.sent == 1
    assert report.failed == 1
    assert again == DeliveryReport()
    [envelope] = server.envelopes
    assert envelope.rcpt_tos == ["pr@brand.example"]
    accepted, refused = deliveries(store, alert_id)
    assert accepted.status == "sent"
    assert refused.status == "failed"
    assert refused.last_code == 550
    assert "no such user" in refused.last_error


def test_all_recipients_refused_4xx_retried(store, mail_server):
    server, port = mail_server
    server.refuse["pr@brand.example"] = "450 4.2.0 mailbox busy"
    alert_id = add_alert(store, "k1", recipients=("pr@brand.example",))

    report = deliver(store, port, later(0))
    server.refuse.clear()
    retried = deliver(store, port, later(1))

    assert report.retrying == 1
    assert retried.sent == 1
    assert deliveries(store, alert_id)[0].status == "sent"


def test_wrong_password_is_temporary(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1", recipients=("pr@brand.example",))
    wrong = SmtpSender(smtp_settings(port), password="wrong")

    report = deliver(store, port, later(0), sender=wrong)

    assert report.retrying == 1
    [delivery] = deliveries(store, alert_id)
    assert delivery.status == "pending"
    assert "535" in delivery.last_error
    assert server.envelopes == []


def test_temporary_failures_give_up_after_retry_time(store):
    alert_id = add_alert(store, "k1", recipients=("pr@brand.example",))
    port = free_port()

    first = deliver(store, port, later(0), retry_time=timedelta(hours=24))
    [pending] = deliveries(store, alert_id)
    last = deliver(store, port, later(24 * 60 + 1), retry_time=timedelta(hours=24))

    assert first.retrying == 1
    assert pending.status == "pending"
    assert last.failed == 1
    [failed] = deliveries(store, alert_id)
    assert failed.status == "failed"
    assert failed.last_error.startswith("gave up after 24 h of temporary failures")
    assert failed.attempts == 2


def test_backoff_doubles_up_to_30_minutes():
    waits = [backoff_seconds(attempt, 0.0) for attempt in range(1, 9)]

    assert waits == [30, 60, 120, 240, 480, 960, 1800, 1800]
    assert backoff_seconds(1, 0.999) >= 22.5
    assert backoff_seconds(20, 0.5) < 1800


def test_stop_releases_unattempted(store, mail_server, robots):
    server, port = mail_server
    feishu = robots("feishu")
    first = add_alert(store, "k1", robots=(("feishu", "feishu"),))
    second = add_alert(store, "k2")
    calls = []

    def stop_after_mail() -> bool:
        calls.append(1)
        return len(calls) > 2

    senders = robot_senders(feishu)
    senders.mail = SmtpSender(smtp_settings(port), password=PASSWORD)
    with senders:
        stopped = deliver_due(store, senders, later(0), stop=stop_after_mail)
        rest = deliver_due(store, senders, later(0))

    assert stopped.sent == 3
    assert rest.sent == 4
    assert len(server.envelopes) == 2
    assert len(feishu.received) == 1
    assert [d.attempts for d in deliveries(store, first)] == [1, 1, 1, 1]
    assert {d.status for d in deliveries(store, second)} == {"sent"}


# A stop between sending and recording


class FailsAfterSend(SmtpSession):
    """Sends for real, then raises before the outcome can be recorded."""

    def send(self, message, alert, recipients):
        super().send(message, alert, recipients)
        raise RuntimeError("lost the outcome")


class FailingSender(SmtpSender):
    def open(self):
        return FailsAfterSend(self.settings, self.password)


def test_error_after_send_leaves_unconfirmed(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1")
    failing = FailingSender(smtp_settings(port), password=PASSWORD)

    report = deliver(store, port, later(0), sender=failing)
    again = deliver(store, port, later(60))

    assert report.unconfirmed == 3
    assert again == DeliveryReport()
    assert len(server.envelopes) == 1
    assert {d.status for d in deliveries(store, alert_id)} == {"unconfirmed"}
    assert "lost the outcome" in deliveries(store, alert_id)[0].last_error
    assert store.list_alerts()[0].delivery_state == "unconfirmed"


KILLED_AFTER_SEND = """
import os, signal, sys
from datetime import UTC, datetime

from alerts.outbox import Senders, deliver_due
from alerts.senders import SmtpSender, SmtpSession
from config import Smtp
from storage import Store


class KilledAfterSend(SmtpSession):
    def send(self, message, alert, recipients):
        super().send(message, alert, recipients)
        os.kill(os.getpid(), signal.SIGKILL)


class Sender(SmtpSender):
    def open(self):
        return KilledAfterSend(self.settings, self.password)


settings = Smtp(host="127.0.0.1", port=int(sys.argv[2]), security="none")
with Store(sys.argv[1]) as store:
    deliver_due(store, Senders(mail=Sender(settings)), datetime.now(UTC))
"""


def test_killed_after_send_not_sent_again(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1")
    url = store.engine.url.render_as_string(hide_password=False)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_SEND, url, str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    left_sending = {d.status for d in deliveries(store, alert_id)}
    marked = store.mark_unconfirmed()
    after_restart = deliver(store, port, later(60))

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert left_sending == {"sending"}
    assert marked == [d.id for d in deliveries(store, alert_id)]
    assert after_restart == DeliveryReport()
    assert len(server.envelopes) == 1
    assert {d.status for d in deliveries(store, alert_id)} == {"unconfirmed"}


# .eml files


def test_eml_writes_one_file_per_message(store, tmp_path):
    alert_id = add_alert(store, "k1", channel="eml")
    update = NewMessage(
        reason="level raised",
        message_id="<k1-update@alerts.example>",
        subject="Re: k1",
        message="Message-ID: <k1-update@alerts.example>\r\n\r\nmore\r\n",
        deliveries=(NewDelivery("eml", "pr@brand.example"),),
    )
    store.add_message(alert_id, update)

    with Senders(mail=EmlSender(tmp_path / "outbox")) as senders:
        report = deliver_due(store, senders, later(0))

    files = sorted(path.name for path in (tmp_path / "outbox").glob("*.eml"))
    assert report.sent == 4
    assert len(files) == 2
    assert files[0].endswith(f"-critical-{alert_id}-1.eml")
    assert files[1].endswith(f"-critical-{alert_id}.eml")
    written = {d.status for d in deliveries(store, alert_id)}
    assert written == {"sent"}


def test_eml_unwritable_folder_retried(store, tmp_path):
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the folder should be")
    alert_id = add_alert(store, "k1", channel="eml")

    with Senders(mail=EmlSender(blocked)) as senders:
        report = deliver_due(store, senders, later(0))

    assert report.retrying == 3
    assert {d.status for d in deliveries(store, alert_id)} == {"pending"}


# Chat robots


def robot_senders(*robots: FakeRobot, secret: str | None = None) -> Senders:
    return Senders(
        robots={
            robot.kind: RobotSender(
                robot.kind,
                robot.kind,
                robot.url,
                http=HTTP,
                timezone="Asia/Shanghai",
                secret=secret if robot.kind != "wecom" else None,
            )
            for robot in robots
        }
    )


def test_robots_receive_cards(store, robots):
    started = [robots(kind, secret=None) for kind in ("wecom", "dingtalk", "feishu")]
    alert_id = add_alert(
        store,
        "k1",
        recipients=(),
        robots=tuple((k, k) for k in ("wecom", "dingtalk", "feishu")),
    )

    with robot_senders(*started) as senders:
        report = deliver_due(store, senders, later(0))

    assert report.sent == 3
    wecom, dingtalk, feishu = (robot.last().payload for robot in started)
    assert "QC7 高速刹车失灵" in wecom["markdown"]["content"]
    assert "QC7 高速刹车失灵" in dingtalk["markdown"]["title"]
    assert "QC7 高速刹车失灵" in feishu["card"]["header"]["title"]["content"]
    assert feishu["card"]["header"]["template"] == "red"
    assert {d.status for d in deliveries(store, alert_id)} == {"sent"}


def test_dingtalk_signature_checked_by_robot(store, robots):
    dingtalk = robots("dingtalk", secret=SECRET)
    alert_id = add_alert(store, "k1", recipients=(), robots=(("dingtalk", "dingtalk"),))

    with robot_senders(dingtalk, secret=SECRET) as senders:
        report = deliver_due(store, senders, later(0))

    assert report.sent == 1
    assert set(dingtalk.last().query) == {"access_token", "timestamp", "sign"}
    assert deliveries(store, alert_id)[0].last_code == 0


def test_dingtalk_wrong_secret_fails_once(store, robots):
    dingtalk = robots("dingtalk", secret=SECRET)
    alert_id = add_alert(store, "k1", recipients=(), robots=(("dingtalk", "dingtalk"),))

    with robot_senders(dingtalk, secret="SEC-wrong-secret-000000000") as senders:
        report = deliver_due(store, senders, later(0))
        again = deliver_due(store, senders, later(120))

    assert report.failed == 1
    assert again == DeliveryReport()
    assert len(dingtalk.received) == 1
    [delivery] = deliveries(store, alert_id)
    assert delivery.status == "failed"
    assert delivery.last_code == 310000
    assert "sign not match" in delivery.last_error


def test_robot_5xx_retried_then_sent(store, robots):
    feishu = robots("feishu")
    feishu.reply(Reply(503, "service unavailable"))
    alert_id = add_alert(store, "k1", recipients=(), robots=(("feishu", "feishu"),))

    with robot_senders(feishu) as senders:
        first = deliver_due(store, senders, later(0), jitter=lambda: 0.0)
        [waiting] = deliveries(store, alert_id)
        second = deliver_due(store, senders, later(1))

    assert first.retrying == 1
    assert waiting.status == "pending"
    assert waiting.last_code == 503
    assert second.sent == 1
    assert len(feishu.received) == 2
    assert deliveries(store, alert_id)[0].attempts == 2


def test_mail_and_robot_of_one_message(store, mail_server, robots):
    server, port = mail_server
    wecom = robots("wecom")
    wecom.reply(Reply(200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    alert_id = add_alert(store, "k1", robots=(("wecom", "wecom"),))
    senders = robot_senders(wecom)
    senders.mail = SmtpSender(smtp_settings(port), password=PASSWORD)

    with senders:
        report = deliver_due(store, senders, later(0))

    assert report.sent == 3
    assert report.failed == 1
    [summary] = store.list_alerts()
    assert summary.delivery_state == "robot failed"
    assert not summary.mail_failed
    assert len(server.envelopes) == 1
    robot = [d for d in deliveries(store, alert_id) if d.channel == "wecom"][0]
    assert robot.last_code == 93000


def test_unconfigured_robot_waits(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1", robots=(("feishu", "ops"),))

    report = deliver(store, port, later(0))

    assert report.sent == 3
    assert report.failed == 0
    [robot] = [d for d in deliveries(store, alert_id) if d.channel == "feishu"]
    assert robot.status == "pending"
    assert robot.last_error == (
        "not sent, the channel is not set up: robot ops is not in the config"
    )


def test_unset_robot_gives_up_later(store, mail_server):
    server, port = mail_server
    alert_id = add_alert(store, "k1", robots=(("feishu", "ops"),))
    reason = "robot 'ops': environment variable OPS_URL is not set"
    mail = SmtpSender(smtp_settings(port), password=PASSWORD)

    def run(minutes: float) -> DeliveryReport:
        senders = Senders(mail=mail, unavailable={("feishu", "ops"): reason})
        return deliver_due(
            store, senders, later(minutes), retry_time=timedelta(hours=1)
        )

    early = run(0)
    [waiting] = [d for d in deliveries(store, alert_id) if d.channel == "feishu"]
    late = run(61)
    [failed] = [d for d in deliveries(store, alert_id) if d.channel == "feishu"]

    assert early.failed == 0
    assert waiting.status == "pending"
    assert waiting.last_error == f"not sent, the channel is not set up: {reason}"
    assert waiting.attempts == 0
    assert late.failed == 1
    assert failed.status == "failed"
    assert failed.last_error.startswith("gave up after 1 h: not sent")
    assert failed.attempts == 1
    assert failed.next_attempt_at is None
    assert run(120).failed == 0


# The job


CRITICAL_POST = {
    "id": "crit-1",
    "source": "weibo",
    "text": "高速上QC7刹车失灵差点追尾,已经报警并打了400要求彻查原因、书面说明",
    "created_at": "2026-11-20T09:12:00+08:00",
    "url": "https://weibo.example/crit-1",
    "author": {"name": "用户100001", "followers": 800, "verified": "none"},
    "engagement": {"likes": 9000, "reposts": 3000, "comments": 2500},
}


def robot_config(tmp_path: Path, database_url: str) -> Path:
    """Write a config with one replay source, .eml mail and one 钉钉 robot."""
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps(CRITICAL_POST, ensure_ascii=False) + "\n")
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["classifier"] = "lexicon"
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["alerts"]["robots"] = [
        {
            "name": "pr-group",
            "kind": "dingtalk",
            "url_env": "TEST_DINGTALK_URL",
            "secret_env": "TEST_DINGTALK_SECRET",
            "levels": ["critical"],
        }
    ]
    data["sources"] = [{**data["sources"][0], "path": str(posts)}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_job_alerts_mail_and_robot(tmp_path, database_url, robots, monkeypatch):
    dingtalk = robots("dingtalk", secret=SECRET)
    monkeypatch.setenv("TEST_DINGTALK_URL", dingtalk.url)
    monkeypatch.setenv("TEST_DINGTALK_SECRET", SECRET)
    config = load(robot_config(tmp_path, database_url))

    with Store(database_url) as store:
        store.migrate()
        summaries, report = run_once(config, store)
        [summary] = store.list_alerts()
        detail = store.get_alert(summary.alert.id)

    assert report.unsuccessful == 0
    assert summary.alert.level == "critical"
    assert summary.delivery_state == "sent"
    channels = sorted({d.channel for d in detail.deliveries})
    assert channels == ["dingtalk", "eml"]
    assert detail.alert.deadline is not None
    assert (
        detail.messages[0]
        .card["review_url"]
        .endswith(f"/posts/{summary.alert.post_id}")
    )
    [request] = dingtalk.received
    assert "危机" in request.payload["markdown"]["title"]
    assert "刹车失灵" in request.payload["markdown"]["text"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_job_waits_for_robot_not_set_up(tmp_path, database_url, caplog):
    config = load(robot_config(tmp_path, database_url))

    with Store(database_url) as store:
        store.migrate()
        run_once(config, store)
        [summary] = store.list_alerts()

    assert summary.deliveries == {"sent": 4, "pending": 1}
    assert "robot not set up, its alerts wait robot=pr-group" in caplog.text
    detail = store_detail(database_url, summary.alert.id)
    [robot] = [d for d in detail.deliveries if d.channel == "dingtalk"]
    assert "TEST_DINGTALK_URL is not set" in robot.last_error


def store_detail(database_url: str, alert_id: int):
    with Store(database_url) as store:
        return store.get_alert(alert_id)
