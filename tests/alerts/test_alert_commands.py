"""The ``alerts`` commands, once's exit status and status's delivery counts,
through the command line, on SQLite and PostgreSQL, with mail sent to a real
SMTP server (aiosmtpd) or written as .eml files."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stored_alerts import add_stored_alert
from test_outbox import LOGIN, PASSWORD, free_port

import pipeline
from storage import Store
from storage.accounts import Accounts

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


def write_config(
    tmp_path: Path, database_url: str, smtp_port: int | None = None, *, login=True
):
    """Write the shipped config with one empty replay source, the lexicon
    classifier, and mail to tmp_path/outbox or to an SMTP server on loopback."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["classifier"] = "lexicon"
    posts = tmp_path / "posts.jsonl"
    posts.touch()
    data["sources"] = [{**data["sources"][0], "path": str(posts)}]
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    if smtp_port is not None:
        data["alerts"]["smtp"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "username": LOGIN,
            "timeout_seconds": 5,
        }
        if not login:
            del data["alerts"]["smtp"]["username"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run(config_path: Path, *args: str, env: dict | None = None):
    env = {"FENGHUO_SMTP_PASSWORD": PASSWORD, **(env or {})}
    return CliRunner().invoke(
        pipeline.cli, ["--config", str(config_path), *args], env=env
    )


@pytest.fixture
def database(database_url):
    with Store(database_url) as store:
        store.migrate()
        yield store


def add_alert(store: Store, key: str, subject: str = "[烽火·危机] 刹车失灵") -> int:
    return add_stored_alert(store, key, subject=subject, created=NOW)


def parse(message: str | bytes):
    data = message.encode("ascii") if isinstance(message, str) else message
    return email.message_from_bytes(data, policy=default_policy)


# once and status


def test_once_exits_3_on_failed_delivery(tmp_path, database, mail_server):
    server, port = mail_server
    server.refuse["cr@qicheng.example"] = "550 5.1.1 no such user"
    config_path = write_config(tmp_path, database_url_of(database), port)
    alert_id = add_alert(database, "k1")

    result = run(config_path, "once")

    assert result.exit_code == 3, result.output
    assert "1 alert deliveries failed for good" in result.output
    assert "alerts resend ID" in result.output
    [delivery] = database.get_alert(alert_id).deliveries
    assert delivery.status == "failed"
    assert delivery.channel == "smtp"


def test_once_exits_0_when_delivered(tmp_path, database, mail_server):
    server, port = mail_server
    config_path = write_config(tmp_path, database_url_of(database), port)
    add_alert(database, "k1")

    result = run(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "failed for good" not in result.output
    assert len(server.envelopes) == 1


def database_url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_once_tells_how_to_settle_unconfirmed(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    add_alert(database, "k1")
    database.claim_deliveries(NOW, mail_channel="eml")

    result = run(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "1 alert deliveries are unconfirmed" in result.output
    assert "are retried" not in result.output
    assert "'alerts confirm DELIVERY_ID'" in result.output
    assert "'alerts resend ALERT_ID'" in result.output


def test_status_shows_interrupted_sending(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    add_alert(database, "k1")
    add_alert(database, "k2")
    database.claim_deliveries(NOW, mail_channel="eml", max_messages=1)

    stopped = run(config_path, "status")
    with database.job_lock():
        running = run(config_path, "status")

    assert "alerts: 1 pending, 1 interrupted, 0 failed" in stopped.output
    assert "the next 'once' or 'run' marks them unconfirmed" in stopped.output
    assert "alerts: 1 pending, 1 sending (job running), 0 failed" in running.output
    assert "interrupted" not in running.output


# alerts list and ack


def test_list_filters_by_status(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    first = add_alert(database, "k1", "[烽火·危机] 第一条")
    second = add_alert(database, "k2", "[烽火·中等] 第二\r\n条")
    database.acknowledge_alert(first, "wang")

    everything = run(config_path, "alerts", "list")
    acknowledged = run(config_path, "alerts", "list", "--status", "acknowledged")
    newest = run(config_path, "alerts", "list", "--limit", "1")
    closed = run(config_path, "alerts", "list", "--status", "closed")

    assert everything.exit_code == 0, everything.output
    lines = everything.output.splitlines()
    assert lines[1].split()[0] == str(second)
    assert lines[2].split()[0] == str(first)
    assert "[烽火·中等] 第二 条" in lines[1]
    assert "pending (pending 1)" in lines[1]
    assert "acknowledged" in lines[2]
    assert len(acknowledged.output.splitlines()) == 2
    assert "第一条" in acknowledged.output
    assert len(newest.output.splitlines()) == 2
    assert closed.output.strip() == "no alerts with status closed"


def test_list_rejects_unknown_status(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))

    result = run(config_path, "alerts", "list", "--status", "lost")

    assert result.exit_code == 2
    assert "'lost' is not one of 'open', 'acknowledged', 'closed'" in result.output


def test_ack_then_already_acknowledged(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")

    first = run(config_path, "alerts", "ack", str(alert_id), "--by", "wang")
    again = run(config_path, "alerts", "ack", str(alert_id), "--by", "li")

    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"alert {alert_id} acknowledged by wang"
    assert again.exit_code == 0
    assert f"alert {alert_id} was already acknowledged by wang at" in again.output
    alert = database.get_alert(alert_id).alert
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", "wang")
    [entry] = Accounts(database.engine).audit_entries(10)
    assert entry.action == "alert.acknowledge"
    assert entry.details == {"by": "wang", "via": "command line"}


def test_ack_defaults_to_login_name(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")

    result = run(config_path, "alerts", "ack", str(alert_id), env={"LOGNAME": "zhao"})

    assert result.exit_code == 0, result.output
    assert database.get_alert(alert_id).alert.acknowledged_by == "zhao"


def test_ack_unknown_alert_exits_1(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))

    result = run(config_path, "alerts", "ack", "999", "--by", "wang")

    assert result.exit_code == 1
    assert "Error: alert 999 not found; 'alerts list' shows the alerts" in result.output


def test_ack_rejects_blank_name(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")

    result = run(config_path, "alerts", "ack", str(alert_id), "--by", "  ")

    assert result.exit_code == 2
    assert "--by: expected a name" in result.output
    assert database.get_alert(alert_id).alert.status == "open"


# alerts resend and confirm


def test_resend_replies_in_thread_and_delivers(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")
    run(config_path, "once")

    result = run(config_path, "alerts", "resend", str(alert_id))

    assert result.exit_code == 0, result.output
    assert "queued for 1 recipients" in result.output
    assert "delivered now: 1 sent, 0 not sent" in result.output
    detail = database.get_alert(alert_id)
    first, resent = detail.messages
    assert resent.reason == "resend"
    assert resent.in_reply_to == first.message_id
    assert resent.message_id != first.message_id
    mail = parse(resent.message)
    original = parse(first.message)
    assert mail["Subject"] == "Re: [烽火·危机] 刹车失灵"
    assert mail["In-Reply-To"] == first.message_id
    assert mail["To"] == original["To"]
    assert mail.get_content() == original.get_content()
    assert {d.status for d in detail.deliveries} == {"sent"}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_resend_while_job_runs_only_queues(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")

    with database.job_lock():
        result = run(config_path, "alerts", "resend", str(alert_id))

    assert result.exit_code == 0, result.output
    assert "a job is running; it delivers the message within a minute" in result.output
    resent = database.get_alert(alert_id).deliveries[-1]
    assert resent.status == "pending"


def test_resend_unknown_alert_exits_1(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))

    result = run(config_path, "alerts", "resend", "4242")

    assert result.exit_code == 1
    assert "alert 4242 not found" in result.output


def test_confirm_settles_unconfirmed_delivery(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))
    alert_id = add_alert(database, "k1")
    database.claim_deliveries(NOW, mail_channel="eml")
    database.mark_unconfirmed()
    [delivery] = database.get_alert(alert_id).deliveries

    result = run(config_path, "alerts", "confirm", str(delivery.id), "--by", "wang")
    again = run(config_path, "alerts", "confirm", str(delivery.id), "--by", "wang")
    unknown = run(config_path, "alerts", "confirm", "99999")

    assert result.exit_code == 0, result.output
    assert f"delivery {delivery.id} (eml to cr@qicheng.example) marked sent" in (
        result.output
    )
    [confirmed] = database.get_alert(alert_id).deliveries
    assert confirmed.status == "sent"
    assert confirmed.sent_at is not None
    assert again.exit_code == 1
    assert "is sent; only an unconfirmed delivery can be confirmed" in again.output
    assert unknown.exit_code == 1
    assert "delivery 99999 not found" in unknown.output


# alerts test


def test_test_mail_prints_server_reply(tmp_path, database, mail_server):
    server, port = mail_server
    config_path = write_config(tmp_path, database_url_of(database), port)

    result = run(config_path, "alerts", "test", "--to", "ops@qicheng.example")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"test mail to ops@qicheng.example accepted by 127.0.0.1:{port}: 250 OK"
    )
    [envelope] = server.envelopes
    assert envelope.rcpt_tos == ["ops@qicheng.example"]
    assert envelope.mail_from == LOGIN
    assert parse(envelope.content)["Subject"] == "[烽火] 测试邮件"


def test_test_mail_without_login(tmp_path, database, mail_server):
    server, port = mail_server
    config_path = write_config(tmp_path, database_url_of(database), port, login=False)

    result = run(config_path, "alerts", "test", "--to", "ops@qicheng.example")

    assert result.exit_code == 0, result.output
    [envelope] = server.envelopes
    assert envelope.rcpt_tos == ["ops@qicheng.example"]


def test_ack_id_too_large_one_line(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))

    result = run(
        config_path, "alerts", "ack", "99999999999999999999999", "--by", "李娜"
    )

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "99999999999999999999999" in result.output


def test_test_mail_refused_exits_1(tmp_path, database, mail_server):
    server, port = mail_server
    server.refuse["ops@qicheng.example"] = "550 5.1.1 mailbox unavailable"
    config_path = write_config(tmp_path, database_url_of(database), port)

    result = run(config_path, "alerts", "test", "--to", "ops@qicheng.example")

    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(
        f"Error: test mail to ops@qicheng.example through 127.0.0.1:{port} failed: "
        "SMTPRecipientsRefused"
    )
    assert "550" in line


def test_test_mail_wrong_password_exits_1(tmp_path, database, mail_server):
    server, port = mail_server
    config_path = write_config(tmp_path, database_url_of(database), port)

    result = run(config_path, "alerts", "test", env={"FENGHUO_SMTP_PASSWORD": "wrong"})

    assert result.exit_code == 1
    assert "SMTPAuthenticationError" in result.output
    assert len(result.output.splitlines()) == 1
    assert server.envelopes == []


def test_test_mail_server_down_exits_1(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database), free_port())

    result = run(config_path, "alerts", "test")

    assert result.exit_code == 1
    assert "ConnectionRefusedError" in result.output
    assert len(result.output.splitlines()) == 1


def test_test_mail_needs_smtp(tmp_path, database):
    config_path = write_config(tmp_path, database_url_of(database))

    result = run(config_path, "alerts", "test")

    assert result.exit_code == 1
    assert "alerts.smtp is not set" in result.output


def test_test_mail_rejects_bad_address(tmp_path, database, mail_server):
    server, port = mail_server
    config_path = write_config(tmp_path, database_url_of(database), port)

    result = run(config_path, "alerts", "test", "--to", "not an address")

    assert result.exit_code == 2
    assert "--to: invalid email address 'not an address'" in result.output


def test_readme_names_every_alerts_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in pipeline.cli.commands["alerts"].commands:
        assert f"pipeline.py alerts {name}" in readme, name
