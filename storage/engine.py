"""Engines for SQLite and PostgreSQL, and the Alembic setup that migrates them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Milliseconds that SQLite waits for another writer before raising
# "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option that makes the next SQLite transaction take the write lock
# at BEGIN, so that it waits for other writers instead of failing when it
# first writes after a read.
WRITE_LOCK_OPTION = "fenghuo_write_lock"

_SURROGATE = re.compile("[\ud800-\udfff]")


def dump_json(value: Any) -> str:
    """Serialize a JSON column value, keeping Chinese text readable in the database.

    A lone surrogate (from a hostile ``\\ud800`` escape) cannot be encoded as
    UTF-8, so such a value falls back to ASCII escapes.
    """
    text = json.dumps(value, ensure_ascii=False, default=str)
    if _SURROGATE.search(text):
        return json.dumps(value, default=str)
    return text


def create_store_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """Create an engine for a SQLite file or a PostgreSQL database.

    ``postgresql://`` URLs use psycopg 3. A SQLite file's parent folder is
    created when missing. In-memory SQLite raises ValueError, because each
    pooled connection would see its own empty database.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(parsed, echo)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed, echo=echo, json_serializer=dump_json, pool_pre_ping=True
        )
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string()!r}; expected "
        "sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname"
    )


def _create_sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(url):
        raise ValueError(
            f"in-memory SQLite is not supported ({url.render_as_string()!r}); "
            "use a file such as sqlite:///data/fenghuo.db"
        )
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    engine = create_engine(url, echo=echo, json_serializer=dump_json)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, record: Any) -> None:
    # The sqlite3 module of Python 3.11 issues BEGIN only before DML, which
    # leaves reads and DDL outside the transaction. Turning that off lets
    # _begin_sqlite_transaction issue BEGIN for every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE_LOCK_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


# The newest migration in storage/migrations/versions; a test checks that it
# is Alembic's head. A database at this revision starts without loading
# Alembic, which keeps about 11 MB out of the running service.
HEAD_REVISION = "0015"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that takes the write lock (BEGIN IMMEDIATE on SQLite)."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Open a transaction for reading."""
    with engine.connect() as connection, connection.begin():
        yield connection


class MigrationError(Exception):
    """A database that the migrations cannot bring up to date."""


def alembic_config(
    url: str | None = None, *, connection: Connection | None = None
) -> Config:
    """Build the Alembic config for ``storage/migrations`` without an ini file.

    Pass an open ``connection`` to migrate inside its transaction, or a ``url``
    for Alembic commands that open their own (``revision --autogenerate``).
    """
    from alembic.config import Config

    config = Config()
    # Config options go through configparser, which treats "%" as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", str(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction.

    Raises MigrationError when Alembic cannot run them.
    """
    if revision == "head" and current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.util.exc import CommandError

    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK_OPTION: True})
        with connection.begin():
            try:
                command.upgrade(alembic_config(connection=connection), revision)
            except CommandError as exc:
                raise MigrationError(str(exc)) from None
    logger.info("database migrated revision=%s", revision)


def current_revision(engine: Engine) -> str | None:
    """Return the database's migration revision, or None before the first one."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.exec_driver_sql(
            "SELECT version_num FROM alembic_version"
        ).scalars()
        found = list(versions)
    return found[0] if len(found) == 1 else None


def downgrade(engine: Engine, revision: str) -> None:
    """Undo the migrations down to ``revision`` (``base`` drops every table)."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK_OPTION: True})
        with connection.begin():
            from alembic import command

            command.downgrade(alembic_config(connection=connection), revision)
    logger.info("database downgraded revision=%s", revision)
