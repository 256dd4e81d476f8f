"""A lock that lets one Fenghuo job at a time work on a database.

Two jobs on one database would both pick up the posts that the other has
stored but not yet analysed. SQLite files get an advisory ``flock`` on a file
beside the database, released by the kernel when the process dies.
PostgreSQL gets a session-level advisory lock on a connection held for the
life of the job, released when that connection closes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

# Key of the PostgreSQL advisory lock: any fixed 64-bit number works, as long
# as nothing else in the database uses it. These are the bytes of "fenghuo\0".
ADVISORY_KEY = 0x66656E67_68756F00


class LockHeld(Exception):
    """Another job holds the database lock. The message tells how to proceed."""


@contextmanager
def job_lock(engine: Engine) -> Iterator[None]:
    """Hold the job lock of ``engine``'s database, or raise LockHeld at once."""
    if engine.dialect.name == "sqlite":
        with _file_lock(Path(engine.url.database).expanduser().resolve()):
            yield
    else:
        with _advisory_lock(engine):
            yield


@contextmanager
def _file_lock(database: Path) -> Iterator[None]:
    path = database.with_name(database.name + ".lock")
    handle = open(path, "a+", encoding="ascii")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LockHeld(
                f"another Fenghuo job (process {holder}) is working on {database}; "
                "wait for it to finish or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection:
        locked = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
        ).scalar_one()
        connection.commit()
        if not locked:
            raise LockHeld(
                f"another Fenghuo job is working on database "
                f"{engine.url.render_as_string()}; wait for it to finish or stop it first"
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            connection.commit()
