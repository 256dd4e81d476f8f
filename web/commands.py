"""The ``serve`` and ``users`` commands of ``pipeline.py``.

:func:`make_commands` builds them around the command line's own config
loading and store opening, which ``pipeline.py`` passes in, so that this
package never imports it. Flask, waitress and argon2 load only when a
command runs.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from config import Config
from storage import Store
from storage.web_tables import ROLES

logger = logging.getLogger(__name__)

Start = Callable[[click.Context], Config]
OpenStore = Callable[[Config], AbstractContextManager[Store]]
Options = Callable[[Any], Any]

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
VIA_COMMAND_LINE = {"via": "command line"}


@dataclass(frozen=True)
class Runtime:
    """The command line's helpers that the commands run with.

    ``start`` sets up logging and loads the config of a command's context,
    ``open_store`` opens and migrates the configured store, and ``options``
    adds the shared ``--config`` and ``-v`` options to a command.
    """

    start: Start
    open_store: OpenStore
    options: Options


def make_commands(
    start: Start, open_store: OpenStore, options: Options
) -> list[click.Command]:
    """Build the ``serve`` command and the ``users`` group."""
    runtime = Runtime(start, open_store, options)
    users = click.Group(
        "users",
        help="Add, list, change and remove the review page's accounts.",
    )
    users = options(users)
    for build in (_add, _passwd, _remove, _disable, _enable, _list):
        users.add_command(build(runtime))
    return [_serve(runtime), users]


def _serve(runtime: Runtime) -> click.Command:
    @click.command()
    @click.option("--host", help="Address to listen on.  [default: web.host]")
    @click.option(
        "--port",
        type=click.IntRange(1, 65535),
        help="TCP port to listen on.  [default: web.port]",
    )
    @runtime.options
    @click.pass_context
    def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
        """Serve the review page with waitress until SIGINT or SIGTERM.

        It starts no scheduler: run 'pipeline.py run' beside it.
        """
        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            _run_server(config, store, host or config.web.host, port or config.web.port)

    return serve


def _run_server(config: Config, store: Store, host: str, port: int) -> None:
    from waitress import create_server

    from .app import create_app

    try:
        server = create_server(
            create_app(config, store),
            host=host,
            port=port,
            ident="fenghuo",
            # Behind a proxy, the app itself reads its X-Forwarded-* headers.
            clear_untrusted_proxy_headers=not config.web.behind_proxy,
        )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise click.ClickException(
            f"web.host/web.port: cannot listen on {host}:{port} ({reason}); "
            "choose a free port or an address of this machine"
        ) from None
    _warn_if_exposed(config, host)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    click.echo(f"review page on http://{_url_host(host)}:{server.effective_port}/")
    logger.info("review page started host=%s port=%s", host, server.effective_port)
    server.run()
    logger.info("review page stopped")


def _exit_on_signal(signum: int, frame: Any) -> NoReturn:
    # waitress closes its sockets when SystemExit reaches its loop.
    raise SystemExit(0)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _warn_if_exposed(config: Config, host: str) -> None:
    web = config.web
    if host in LOOPBACK_HOSTS or web.behind_proxy or web.secure_cookies is True:
        return
    logger.warning(
        "review page listens beyond loopback without TLS host=%s; passwords and "
        "session cookies cross the network in clear text, so put a TLS proxy in "
        "front and set web.behind_proxy",
        host,
    )


PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)


def _add(runtime: Runtime) -> click.Command:
    @click.command("add")
    @click.argument("name")
    @click.option(
        "--role",
        type=click.Choice(ROLES),
        required=True,
        help="viewer reads, analyst also acts on posts, lead also sees the audit log.",
    )
    @click.option("--display-name", help="Name shown on the page.  [default: NAME]")
    @PASSWORD_STDIN
    @runtime.options
    @click.pass_context
    def add(
        ctx: click.Context,
        name: str,
        role: str,
        display_name: str | None,
        password_stdin: bool,
    ) -> None:
        """Add a user; the password is asked twice, without echo."""
        from storage.accounts import Accounts, UserExists, check_user_fields

        from .passwords import hash_password

        display_name = display_name or name
        try:
            check_user_fields(name, display_name, role)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        config = runtime.start(ctx)
        password = _read_password(password_stdin)
        with runtime.open_store(config) as store:
            accounts = Accounts(store.engine)
            now = datetime.now(UTC)
            try:
                accounts.add_user(
                    name, display_name, role, hash_password(password), now
                )
            except UserExists as exc:
                raise click.ClickException(
                    f"{exc}; use 'users passwd' to change its password"
                ) from None
            details = {"role": role, **VIA_COMMAND_LINE}
            accounts.add_audit(None, "user.add", ("user", name), details, now)
        click.echo(f"added {role} {name}")

    return add


def _passwd(runtime: Runtime) -> click.Command:
    @click.command("passwd")
    @click.argument("name")
    @PASSWORD_STDIN
    @runtime.options
    @click.pass_context
    def passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
        """Set a user's password and end their sessions."""
        from .passwords import hash_password

        password_hash = hash_password(_read_password(password_stdin))
        _change_user(
            ctx,
            runtime,
            name,
            "user.passwd",
            lambda accounts: accounts.set_password(name, password_hash),
        )
        click.echo(f"password of {name} changed; their sessions have ended")

    return passwd


def _remove(runtime: Runtime) -> click.Command:
    @click.command("remove")
    @click.argument("name")
    @runtime.options
    @click.pass_context
    def remove(ctx: click.Context, name: str) -> None:
        """Delete a user and their sessions; the audit log keeps their name."""
        _change_user(
            ctx,
            runtime,
            name,
            "user.remove",
            lambda accounts: accounts.remove_user(name),
        )
        click.echo(f"removed {name}")

    return remove


def _disable(runtime: Runtime) -> click.Command:
    return _switch(runtime, disabled=True)


def _enable(runtime: Runtime) -> click.Command:
    return _switch(runtime, disabled=False)


def _switch(runtime: Runtime, *, disabled: bool) -> click.Command:
    command_name = "disable" if disabled else "enable"
    help_text = (
        "Stop a user from logging in, and end their sessions."
        if disabled
        else "Let a disabled user log in again."
    )

    @click.command(command_name, help=help_text)
    @click.argument("name")
    @runtime.options
    @click.pass_context
    def switch(ctx: click.Context, name: str) -> None:
        _change_user(
            ctx,
            runtime,
            name,
            f"user.{command_name}",
            lambda accounts: accounts.set_disabled(name, disabled),
        )
        click.echo(f"{command_name}d {name}")

    return switch


def _list(runtime: Runtime) -> click.Command:
    @click.command("list")
    @runtime.options
    @click.pass_context
    def list_users(ctx: click.Context) -> None:
        """List every user with their role and state."""
        from storage.accounts import Accounts

        config = runtime.start(ctx)
        with runtime.open_store(config) as store:
            found = Accounts(store.engine).list_users()
        click.echo(_format_users(found))

    return list_users


def _change_user(
    ctx: click.Context,
    runtime: Runtime,
    name: str,
    action: str,
    change: Callable[[Any], bool],
) -> None:
    from storage.accounts import Accounts

    config = runtime.start(ctx)
    with runtime.open_store(config) as store:
        accounts = Accounts(store.engine)
        if not change(accounts):
            raise click.ClickException(f"no user named {name!r}; see 'users list'")
        accounts.add_audit(
            None, action, ("user", name), VIA_COMMAND_LINE, datetime.now(UTC)
        )


def _read_password(from_stdin: bool) -> str:
    from .passwords import check_new_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_new_password(password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return password


def _format_users(found: list[Any]) -> str:
    if not found:
        return "no users yet; add one with 'pipeline.py users add NAME --role analyst'"
    lines = [
        f"{'name':<24}  {'role':<8}  {'state':<8}  {'created (UTC)':<16}  display name"
    ]
    for user in found:
        state = "disabled" if user.disabled else "active"
        created = user.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"{user.name:<24}  {user.role:<8}  {state:<8}  {created:<16}  {user.display_name}"
        )
    return "\n".join(lines)
