"""Mail senders for the outbox: an SMTP server, or .eml files in a folder.

A sender opens a session for one run of the outbox. The SMTP session keeps
one connection for all the messages of the run and sends each message in one
transaction to all its recipients, so that every copy is the same apart from
the envelope. It reports each recipient that was not accepted as a
:class:`Refusal`, temporary or permanent.

SMTP reply codes follow RFC 5321: 4xx is a temporary failure and 5xx a
permanent one. A failure to connect, secure the session or log in is
temporary whatever its code, because it is about the server or the setup,
not the message.
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from alerts.mail import envelope_sender, open_smtp, write_eml
from config import Smtp
from storage import AlertRecord, MessageRecord

logger = logging.getLogger(__name__)

DETAIL_CHARS = 500


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient's failure to get a message: its reason, and whether it is
    worth trying again later.

    ``code`` is the SMTP reply code when the server gave one.
    ``retry_after`` is a wait in seconds that the receiver asked for.
    """

    temporary: bool
    detail: str
    code: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class MailResult:
    """The outcome of sending one message: ``detail`` for the accepted
    recipients (the server or the file), and the refused ones."""

    detail: str
    refused: Mapping[str, Refusal] = field(default_factory=dict)


class MailSession(Protocol):
    def send(
        self, message: MessageRecord, alert: AlertRecord, recipients: Sequence[str]
    ) -> MailResult:
        """Send ``message`` to the ``recipients`` (bare addresses) at once."""
        ...

    def close(self) -> None: ...


class MailSender(Protocol):
    channel: str

    def open(self) -> MailSession:
        """Start a session for one run of the outbox."""
        ...


def refusal_for_code(code: int, text: str | bytes) -> Refusal:
    """Classify an SMTP reply: 5xx is permanent, anything else temporary."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    detail = f"{code} {text}".strip()[:DETAIL_CHARS]
    return Refusal(temporary=not 500 <= code < 600, detail=detail, code=code)


class SmtpSender:
    """Send through the configured SMTP server; the password comes from the
    environment variable that ``settings.password_env`` names."""

    channel = "smtp"

    def __init__(self, settings: Smtp, password: str | None = None) -> None:
        self.settings = settings
        self.password = password or os.environ.get(settings.password_env)

    def open(self) -> SmtpSession:
        return SmtpSession(self.settings, self.password)


class SmtpSession:
    """One connection, opened at the first message and again after a drop.

    After a failed connection every later message of the session is refused
    with the same temporary failure, so that a server that is down costs one
    connection timeout per run, not one per message.
    """

    def __init__(self, settings: Smtp, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self.server = f"{settings.host}:{settings.port}"
        self._client: smtplib.SMTP | None = None
        self._broken: Refusal | None = None

    def send(
        self, message: MessageRecord, alert: AlertRecord, recipients: Sequence[str]
    ) -> MailResult:
        try:
            data = message.message.encode("ascii")
        except UnicodeEncodeError:
            refusal = Refusal(False, "the stored message is not 7-bit ASCII text")
            return MailResult(self.server, dict.fromkeys(recipients, refusal))
        client = self._connected()
        if client is None:
            return MailResult(self.server, dict.fromkeys(recipients, self._broken))

        sender = envelope_sender(message.message, self.settings)
        try:
            refused = client.sendmail(sender, list(recipients), data)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            refusal = refusal_for_code(exc.smtp_code, exc.smtp_error)
            return MailResult(self.server, dict.fromkeys(recipients, refusal))
        except (OSError, smtplib.SMTPException) as exc:
            # The connection is in an unknown state: drop it, and open a new
            # one for the next message.
            self._drop()
            refusal = Refusal(True, _describe(exc), getattr(exc, "smtp_code", None))
            return MailResult(self.server, dict.fromkeys(recipients, refusal))
        return MailResult(
            self.server,
            {address: refusal_for_code(*reply) for address, reply in refused.items()},
        )

    def _connected(self) -> smtplib.SMTP | None:
        if self._client is not None or self._broken is not None:
            return self._client
        try:
            self._client = open_smtp(self.settings, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            self._broken = Refusal(
                True,
                f"cannot connect to {self.server}: {_describe(exc)}",
                getattr(exc, "smtp_code", None),
            )
            logger.warning(
                "smtp connection failed server=%s error=%s", self.server, _describe(exc)
            )
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        if self._client is None:
            return
        try:
            self._client.quit()
        except (OSError, smtplib.SMTPException):
            pass  # the messages are recorded; a failed QUIT changes nothing
        finally:
            self._drop()


class EmlSender:
    """Write each message as an .eml file into the outbox folder."""

    channel = "eml"

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def open(self) -> EmlSender:
        return self

    def send(
        self, message: MessageRecord, alert: AlertRecord, recipients: Sequence[str]
    ) -> MailResult:
        """Write the message once for all ``recipients``.

        The file is named by the alert's time, level and id, and the message's
        sequence after the first, so that writing it again replaces it.
        """
        name = f"{alert.created_at:%Y%m%d-%H%M%S}-{alert.level}-{alert.id}"
        if message.sequence:
            name += f"-{message.sequence}"
        try:
            path = write_eml(message.message, self.outbox, name)
        except (OSError, UnicodeEncodeError) as exc:
            temporary = isinstance(exc, OSError)
            refusal = Refusal(temporary, f"cannot write to {self.outbox}: {exc}")
            return MailResult(str(self.outbox), dict.fromkeys(recipients, refusal))
        return MailResult(str(path))

    def close(self) -> None:
        pass


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:DETAIL_CHARS]


def send_now(settings: Smtp, password: str | None, message: str, recipient: str) -> str:
    """Send one message to one recipient over a connection of its own, and
    return the server's reply to the message data, such as "250 2.0.0 Ok".

    Raises OSError for network and TLS errors and ``smtplib.SMTPException``
    for the server's refusals, including a refused sender or recipient.
    """
    client = open_smtp(settings, password)
    try:
        sender = envelope_sender(message, settings)
        # Without STARTTLS or a login nothing has greeted the server yet.
        client.ehlo_or_helo_if_needed()
        code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = client.data(message.encode("ascii"))
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return f"{code} {reply.decode('utf-8', 'replace')}"


def describe_error(exc: BaseException) -> str:
    """Describe an SMTP or network error in one line, as the delivery log does."""
    return " ".join(_describe(exc).split())
