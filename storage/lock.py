"""A lock that lets one Fenghuo job at a time work on a database.

Two jobs on one database would both pick up the posts that the other has
stored but not yet analysed. SQLite files get an advisory ``flock`` on a file
beside the database, released by the kernel when the process dies.
PostgreSQL gets a session-level advisory lock on a connection held for the
life of the job, released when that connection closes.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock: any fixed 64-bit number works, as long
# as nothing else in the database uses it. These are the bytes of "fenghuo\0".
ADVISORY_KEY = 0x66656E67_68756F00


class LockHeld(Exception):
    """Another job has the database lock. The message gives the next step."""


class HeldLock:
    """A job lock that is held; :meth:`verify` checks that it still is."""

    def verify(self) -> None:
        """Raise LockHeld when the lock was lost and cannot be taken back."""


@contextmanager
def job_lock(engine: Engine) -> Iterator[HeldLock]:
    """Hold the job lock of ``engine``'s database, or raise LockHeld at once."""
    if engine.dialect.name == "sqlite":
        # The kernel keeps a flock for as long as the file stays open.
        with _file_lock(Path(engine.url.database).expanduser().resolve()):
            yield HeldLock()
    else:
        with _advisory_lock(engine) as held:
            yield held


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


class _AdvisoryLock(HeldLock):
    """A PostgreSQL advisory lock held by one dedicated connection.

    The lock lives as long as that connection. A server restart ends it
    without notice to the client, so :meth:`verify` queries ``pg_locks`` and
    takes the lock again on a new connection when it was lost.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection = None

    def acquire(self) -> None:
        connection = self.engine.connect()
        try:
            locked = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
            ).scalar_one()
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not locked:
            connection.close()
            raise LockHeld(
                f"another Fenghuo job is working on database "
                f"{self.engine.url.render_as_string()}; wait for it to finish or stop it first"
            )
        self.connection = connection

    def verify(self) -> None:
        held = 0
        if self.connection is not None:
            try:
                held = self.connection.execute(
                    _HELD, {"key": ADVISORY_KEY}
                ).scalar_one()
                self.connection.commit()
            except DBAPIError:
                held = 0
        if held:
            return
        self._discard()
        self.acquire()
        logger.warning("job lock taken again after the database connection was lost")

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY}
            )
            self.connection.commit()
        except DBAPIError:
            pass
        self._discard()

    def _discard(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.close()
        except DBAPIError:
            pass
        self.connection = None


# The lock of this session, found in pg_locks by the two halves of its key.
_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() "
    "AND ((classid::bigint << 32) | objid::bigint) = :key"
)


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[HeldLock]:
    lock = _AdvisoryLock(engine)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
