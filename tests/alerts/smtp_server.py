"""A loopback SMTP server (aiosmtpd) for the alert tests."""

from __future__ import annotations

import email
import socket
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class MailServer:
    """An aiosmtpd handler that records accepted mail and replies as scripted.

    ``refuse`` maps an address to the reply to its RCPT command, and
    ``data_reply`` returns the reply to the n-th DATA command (from 1), or
    None to accept it.
    """

    def __init__(self) -> None:
        self.envelopes = []
        self.sessions = 0
        self.data_commands = 0
        self.refuse: dict[str, str] = {}
        self.data_reply = lambda number: None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        reply = self.data_reply(self.data_commands)
        if reply is not None:
            return reply
        self.envelopes.append(envelope)
        return "250 OK"

    def copies(self) -> dict[tuple[str, str], int]:
        """Count the copies received per (Message-ID, recipient)."""
        counts: dict[tuple[str, str], int] = {}
        for envelope in self.envelopes:
            message_id = parse(envelope.content)["Message-ID"]
            for address in envelope.rcpt_tos:
                key = (message_id, address)
                counts[key] = counts.get(key, 0) + 1
        return counts


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(handler: MailServer, port: int) -> Controller:
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    return controller


def parse(content: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(content, policy=default_policy)
