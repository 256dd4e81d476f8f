"""SMTP delivery against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import socket
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.outbox import SmtpTransport, deliver_pending
from config import Smtp
from storage import NewAlert, Store

SUBJECT = (
    "[烽火·危机] 投诉 | QC7 | 高速刹车失灵 已报警 要求彻查原因并书面说明 Brake failure"
)


class Recorder:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    recorder = Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, recorder
    controller.stop()


def make_message() -> str:
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["Subject"] = SUBJECT
    message["From"] = "烽火预警 <fenghuo@alerts.example>"
    message["To"] = "公关部 <pr@brand.example>"
    message["Message-ID"] = "<abc.alert@alerts.example>"
    message.set_content("各位好，\n\n烽火发现一条【危机】级投诉。\n", charset="utf-8")
    return message.as_string()


def pending_alert(store: Store, recipients: tuple[str, ...]) -> int:
    [alert_id] = store.add_alerts(
        [
            NewAlert(
                post_id=None,
                dedup_key="k1",
                level="critical",
                kind="complaint",
                subject=SUBJECT,
                recipients=recipients,
                message_id="<abc.alert@alerts.example>",
                message=make_message(),
            )
        ]
    )
    return alert_id


def login_settings(port: int, password: str, monkeypatch) -> Smtp:
    """SMTP settings that log in, with ``password`` in the environment."""
    monkeypatch.setenv("TEST_SMTP_PASSWORD", password)
    return Smtp(
        host="127.0.0.1",
        port=port,
        security="none",
        username="fenghuo@alerts.example",
        password_env="TEST_SMTP_PASSWORD",
    )


def test_smtp_delivers_with_login(smtp_server, monkeypatch, store):
    controller, recorder = smtp_server
    settings = login_settings(controller.port, "s3cret", monkeypatch)
    alert_id = pending_alert(store, ("公关部 <pr@brand.example>",))

    report = deliver_pending(store, SmtpTransport(settings))

    assert report.sent == 1
    assert store.pending_alerts() == []
    assert store.was_delivered(alert_id)
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "fenghuo@alerts.example"
    assert envelope.rcpt_tos == ["pr@brand.example"]
    received = email.message_from_bytes(envelope.content, policy=default_policy)
    assert received["Subject"] == SUBJECT
    assert received["To"].addresses[0].display_name == "公关部"


def test_smtp_wrong_password_keeps_alert_pending(smtp_server, monkeypatch, store):
    controller, recorder = smtp_server
    settings = login_settings(controller.port, "wrong", monkeypatch)
    alert_id = pending_alert(store, ("pr@brand.example",))

    report = deliver_pending(store, SmtpTransport(settings))

    assert report.failed == 1
    [pending] = store.pending_alerts()
    assert pending.id == alert_id
    assert pending.attempts == 1
    assert "535" in pending.last_error
    assert recorder.envelopes == []


def test_smtp_server_down_keeps_alert_pending(store):
    settings = Smtp(
        host="127.0.0.1", port=free_port(), security="none", timeout_seconds=2
    )
    pending_alert(store, ("pr@brand.example",))

    report = deliver_pending(store, SmtpTransport(settings))

    assert report.failed == 1
    assert len(store.pending_alerts()) == 1
