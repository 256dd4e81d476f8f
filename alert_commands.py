"""The ``alerts`` commands of ``pipeline.py``: list, ack, resend, confirm, test.

:func:`make_alert_commands` builds the group around the command line's own
config loading and store opening, which ``pipeline.py`` passes in, as the
review page's commands do.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import smtplib
from datetime import UTC, datetime
from email.utils import parseaddr

import click
from sqlalchemy.exc import IntegrityError

from alerts.mail import Thread, compose_notice, copy_as_reply, reply_references
from alerts.outbox import mail_channel, mail_deliveries
from alerts.senders import describe_error, send_now
from config import Config
from job import deliver_once
from storage import (
    MAIL_CHANNELS,
    AlertDetail,
    LockHeld,
    NewDelivery,
    NewMessage,
    Store,
)
from storage.accounts import Accounts
from web.commands import OpenStore, Options, Runtime, Start

logger = logging.getLogger(__name__)

ALERT_STATUSES = ("open", "acknowledged", "closed")
VIA_COMMAND_LINE = {"via": "command line"}


BY_OPTION = click.option(
    "--by",
    help="Name recorded as who did it.  [default: the login name]",
)


def make_alert_commands(
    start: Start, open_store: OpenStore, options: Options
) -> click.Group:
    """Build the ``alerts`` group."""
    runtime = Runtime(start, open_store, options)
    group = click.Group(
        "alerts",
        help="List, acknowledge and resend alerts, settle unconfirmed deliveries, "
        "and send a test mail.",
    )
    group = options(group)
    for build in (_list, _ack, _resend, _confirm, _test):
        group.add_command(build(runtime))
    return group


def _list(runtime: Runtime) -> click.Command:
    @click.command("list")
    @click.option(
        "--status",
        type=click.Choice(ALERT_STATUSES),
        help="Only alerts in this state.  [default: all]",
    )
    @click.option(
        "--limit",
        type=click.IntRange(1, 10_000),
        default=20,
        show_default=True,
        help="Show at most this many alerts, newest first.",
    )
    @runtime.options
    @click.pass_context
    def list_alerts(ctx: click.Context, status: str | None, limit: int) -> None:
        """List alerts, newest first, with their state and deliveries."""
        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            summaries = store.list_alerts(limit=limit, status=status)
        if not summaries:
            click.echo("no alerts" + (f" with status {status}" if status else ""))
            return
        click.echo(
            f"{'id':>6}  {'created (UTC)':<16}  {'level':<8}  {'status':<12}  "
            f"{'tier':>4}  {'deliveries':<34}  subject"
        )
        for summary in summaries:
            alert = summary.alert
            counts = ", ".join(
                f"{state} {count}"
                for state, count in sorted(summary.deliveries.items())
            )
            deliveries = f"{summary.delivery_state} ({counts or 'none'})"
            click.echo(
                f"{alert.id:>6}  {_utc(alert.created_at):<16}  {alert.level:<8}  "
                f"{alert.status:<12}  {alert.escalation_tier:>4}  {deliveries:<34}  "
                f"{' '.join(alert.subject.split())}"
            )

    return list_alerts


def _ack(runtime: Runtime) -> click.Command:
    @click.command("ack")
    @click.argument("alert_id", metavar="ID", type=click.IntRange(min=1, max=2**63 - 1))
    @BY_OPTION
    @runtime.options
    @click.pass_context
    def ack(ctx: click.Context, alert_id: int, by: str | None) -> None:
        """Acknowledge an alert, which stops its escalation."""
        by = _actor(by)
        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            now = datetime.now(UTC)
            try:
                changed = store.acknowledge_alert(alert_id, by, now=now)
            except LookupError:
                raise click.ClickException(_not_found(alert_id)) from None
            alert = store.get_alert(alert_id).alert
            if changed:
                details = {"by": by, **VIA_COMMAND_LINE}
                Accounts(store.engine).add_audit(
                    None, "alert.acknowledge", ("alert", alert_id), details, now
                )
        if changed:
            click.echo(f"alert {alert_id} acknowledged by {by}")
        elif alert.status == "acknowledged":
            click.echo(
                f"alert {alert_id} was already acknowledged by "
                f"{alert.acknowledged_by} at {_utc(alert.acknowledged_at)} UTC"
            )
        else:
            click.echo(f"alert {alert_id} is {alert.status}; nothing to acknowledge")

    return ack


def _resend(runtime: Runtime) -> click.Command:
    @click.command("resend")
    @click.argument("alert_id", metavar="ID", type=click.IntRange(min=1, max=2**63 - 1))
    @runtime.options
    @click.pass_context
    def resend(ctx: click.Context, alert_id: int) -> None:
        """Send an alert again, as a new message in its thread, to every
        recipient of its first message.

        Use it after a failed delivery, or for an unconfirmed one that did not
        arrive. The message is delivered at once when no job holds the lock,
        otherwise by the running job within a minute.
        """
        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            detail = store.get_alert(alert_id)
            if detail is None:
                raise click.ClickException(_not_found(alert_id))
            now = datetime.now(UTC)
            message = resend_message(detail, config, now)
            if not message.deliveries:
                raise click.ClickException(
                    f"alert {alert_id}: its first message had no recipients"
                )
            try:
                message_id = store.add_message(alert_id, message, now=now)
            except IntegrityError:
                raise click.ClickException(
                    f"alert {alert_id} got another message meanwhile; run the "
                    "command again"
                ) from None
            click.echo(
                f"alert {alert_id}: message {message_id} queued for "
                f"{len(message.deliveries)} recipients"
            )
            _deliver_if_free(store, config)

    return resend


def resend_message(detail: AlertDetail, config: Config, now: datetime) -> NewMessage:
    """Build a copy of an alert's first message as a reply to its latest one,
    to every recipient of the first: each mail address on the configured mail
    channel, and each robot."""
    first, last = detail.messages[0], detail.messages[-1]

    first_deliveries = [d for d in detail.deliveries if d.message == first.id]
    addresses = [d.recipient for d in first_deliveries if d.channel in MAIL_CHANNELS]
    robots = tuple(
        NewDelivery(d.channel, d.recipient)
        for d in first_deliveries
        if d.channel not in MAIL_CHANNELS
    )

    thread = Thread(
        key=f"{detail.alert.dedup_key}#resend-{len(detail.messages)}",
        parent=last.message_id,
        references=reply_references([m.message_id for m in detail.messages]),
        subject=first.subject,
    )
    copy = copy_as_reply(first.message, thread, now=now)

    deliveries = mail_deliveries(mail_channel(config.alerts), addresses)
    return NewMessage(
        reason="resend",
        message_id=copy.message_id,
        subject=copy.subject,
        message=copy.message,
        deliveries=deliveries + (robots if first.card is not None else ()),
        in_reply_to=thread.parent,
        references=" ".join(thread.references),
        card=first.card,
    )


def _deliver_if_free(store: Store, config: Config) -> None:
    """Deliver what is due now unless a job holds the lock, which then does."""
    try:
        with store.job_lock():
            sent, unsent = deliver_once(config, store, datetime.now(UTC))
    except LockHeld:
        click.echo("a job is running; it delivers the message within a minute")
        return
    click.echo(f"delivered now: {sent} sent, {unsent} not sent")
    if unsent:
        raise click.ClickException(
            "some deliveries did not succeed; 'alerts list' shows the alert's state"
        )


def _confirm(runtime: Runtime) -> click.Command:
    @click.command("confirm")
    @click.argument(
        "delivery_id", metavar="DELIVERY_ID", type=click.IntRange(min=1, max=2**63 - 1)
    )
    @BY_OPTION
    @runtime.options
    @click.pass_context
    def confirm(ctx: click.Context, delivery_id: int, by: str | None) -> None:
        """Mark an unconfirmed delivery as sent, after checking that the
        message arrived in the recipient's mailbox."""
        by = _actor(by)
        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            now = datetime.now(UTC)
            try:
                delivery = store.confirm_delivery(delivery_id, by, now=now)
            except (LookupError, ValueError) as exc:
                raise click.ClickException(str(exc).strip("'\"")) from None
            details = {"by": by, **VIA_COMMAND_LINE}
            Accounts(store.engine).add_audit(
                None, "delivery.confirm", ("delivery", delivery_id), details, now
            )
        click.echo(
            f"delivery {delivery_id} ({delivery.channel} to {delivery.recipient}) "
            "marked sent"
        )

    return confirm


def _test(runtime: Runtime) -> click.Command:
    @click.command("test")
    @click.option(
        "--to",
        "recipient",
        help="Address to send the test mail to.  [default: the alerts.sender address]",
    )
    @runtime.options
    @click.pass_context
    def test(ctx: click.Context, recipient: str | None) -> None:
        """Send one test mail through the configured SMTP server now.

        Prints the server's reply, or the error, in one line. Exits with
        status 1 when the mail was not accepted.
        """
        config = runtime.start(ctx)
        settings = config.alerts
        address = parseaddr(recipient or settings.sender)[1]
        if "@" not in address or any(c.isspace() for c in address):
            raise click.UsageError(
                f"--to: invalid email address {recipient or settings.sender!r}"
            )
        if settings.smtp is None:
            raise click.ClickException(
                "alerts.smtp is not set, so alerts are written as .eml files to "
                f"{config.resolve(settings.outbox)}; add an smtp section to test "
                "a mail server"
            )
        smtp = settings.smtp
        server = f"{smtp.host}:{smtp.port}"
        composed = compose_notice(
            f"test:{secrets.token_hex(8)}",
            "[烽火] 测试邮件",
            "这是一封测试邮件：烽火能通过这个邮件服务器发出预警。\n",
            sender=settings.sender,
            recipients=(address,),
            now=datetime.now(UTC),
        )
        password = os.environ.get(smtp.password_env)
        try:
            reply = send_now(smtp, password, composed.message, address)
        except (OSError, smtplib.SMTPException) as exc:
            raise click.ClickException(
                f"test mail to {address} through {server} failed: {describe_error(exc)}"
            ) from None
        click.echo(
            f"test mail to {address} accepted by {server}: {' '.join(reply.split())}"
        )

    return test


def _actor(by: str | None) -> str:
    """Return the name given with --by, on one line, or the login name."""
    if by is None:
        try:
            by = getpass.getuser()
        except (OSError, KeyError):
            raise click.UsageError(
                "--by: missing, and the login name is unknown; give a name"
            ) from None
    name = " ".join(by.split())
    if not name:
        raise click.UsageError("--by: expected a name; got an empty one")
    return name


def _not_found(alert_id: int) -> str:
    return f"alert {alert_id} not found; 'alerts list' shows the alerts"


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
