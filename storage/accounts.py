"""The queries of the review page's accounts, sessions, login attempts and audit log.

:class:`Accounts` takes the engine of a migrated :class:`storage.Store`. Each
method runs in its own transaction. Password hashing and session tokens are
the web package's business: this module stores the hashes it is given.
The audit log is append-only, because no method here updates or deletes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .engine import read_transaction, write_transaction
from .web_tables import ROLES, audit_log, login_attempts, sessions, users

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_DISPLAY_NAME = 100
# Longer values are cut before they are stored as a login attempt's name or
# address or as an audit entry's subject.
MAX_KEY_LENGTH = 64


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A stored account, with its password hash."""

    id: int
    name: str
    display_name: str
    role: str
    password_hash: str
    created_at: datetime
    disabled: bool


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A live session and its user."""

    id_hash: str
    user: UserRecord
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    csrf_token: str


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed logins within a window: how many, and when the newest was."""

    count: int
    newest: datetime | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit entry."""

    id: int
    actor: str | None
    at: datetime
    action: str
    subject_type: str | None
    subject_id: str | None
    details: dict[str, Any]


class UserExists(ValueError):
    """A user with this name is already stored."""


def check_user_fields(name: str, display_name: str, role: str) -> None:
    """Raise ValueError naming the field when an account's fields are invalid."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid user name {name!r}; expected 1 to 64 lower-case letters, "
            "digits, '_', '.' or '-', starting with a letter or digit"
        )
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}; expected one of {', '.join(ROLES)}")
    if not display_name.strip() or len(display_name) > MAX_DISPLAY_NAME:
        raise ValueError(
            f"invalid display name {display_name!r}; expected 1 to "
            f"{MAX_DISPLAY_NAME} characters"
        )
    if not display_name.isprintable():
        raise ValueError(
            f"invalid display name {display_name!r}; expected one line of "
            "printable text"
        )


class Accounts:
    """Users, sessions, login attempts and the audit log, on a Store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine)

    # Users

    def add_user(
        self,
        name: str,
        display_name: str,
        role: str,
        password_hash: str,
        now: datetime,
    ) -> UserRecord:
        """Store a new user.

        Raises ValueError for an invalid field and :class:`UserExists` when the
        name is taken.
        """
        check_user_fields(name, display_name, role)
        row = {
            "name": name,
            "display_name": display_name,
            "role": role,
            "password_hash": password_hash,
            "created_at": now,
            "disabled": False,
        }
        try:
            with self._write() as connection:
                connection.execute(insert(users).values(row))
        except IntegrityError:
            raise UserExists(f"user {name!r} already exists") from None
        found = self.find_user(name)
        assert found is not None
        return found

    def find_user(self, name: str) -> UserRecord | None:
        """Return the user of this name, or None."""
        with self._read() as connection:
            row = connection.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else _user(row._mapping)

    def list_users(self) -> list[UserRecord]:
        """Return every user, by name."""
        with self._read() as connection:
            rows = connection.execute(select(users).order_by(users.c.name)).all()
        return [_user(row._mapping) for row in rows]

    def remove_user(self, name: str) -> bool:
        """Delete a user and their sessions; return False when there is none."""
        with self._write() as connection:
            user_id = _user_id(connection, name)
            if user_id is None:
                return False
            connection.execute(delete(sessions).where(sessions.c.user_id == user_id))
            connection.execute(delete(users).where(users.c.id == user_id))
        return True

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace a user's password hash and end their sessions.

        Returns False when there is no such user.
        """
        return self._change_user(name, {"password_hash": password_hash}, True)

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        """Replace a hash made with older parameters, keeping the sessions."""
        with self._write() as connection:
            connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash)
            )

    def set_disabled(self, name: str, disabled: bool) -> bool:
        """Disable or enable a user; disabling ends their sessions.

        Returns False when there is no such user.
        """
        return self._change_user(name, {"disabled": disabled}, disabled)

    def _change_user(
        self, name: str, values: Mapping[str, Any], end_sessions: bool
    ) -> bool:
        with self._write() as connection:
            user_id = _user_id(connection, name)
            if user_id is None:
                return False
            connection.execute(
                update(users).where(users.c.id == user_id).values(values)
            )
            if end_sessions:
                connection.execute(
                    delete(sessions).where(sessions.c.user_id == user_id)
                )
        return True

    # Sessions

    def start_session(
        self,
        user: UserRecord,
        id_hash: str,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
        address: str,
    ) -> None:
        """Store a new session with the successful login attempt that opened it.

        Expired sessions of every user are deleted in the same transaction.
        """
        with self._write() as connection:
            connection.execute(delete(sessions).where(sessions.c.expires_at <= now))
            connection.execute(
                insert(sessions).values(
                    id_hash=id_hash,
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                    csrf_token=csrf_token,
                )
            )
            _add_attempt(connection, user.name, address, now, ok=True)

    def find_session(self, id_hash: str, now: datetime) -> SessionRecord | None:
        """Return the session with this hash, unless it expired or its user is
        disabled."""
        statement = (
            select(sessions, users)
            .join_from(sessions, users, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.id_hash == id_hash,
                sessions.c.expires_at > now,
                users.c.disabled.is_(False),
            )
        )
        with self._read() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        values = row._mapping
        user = _user({column.name: values[column] for column in users.c})
        return SessionRecord(
            id_hash=values[sessions.c.id_hash],
            user=user,
            created_at=values[sessions.c.created_at],
            last_seen_at=values[sessions.c.last_seen_at],
            expires_at=values[sessions.c.expires_at],
            csrf_token=values[sessions.c.csrf_token],
        )

    def touch_session(self, id_hash: str, now: datetime) -> None:
        """Note that the session was used at ``now``."""
        with self._write() as connection:
            connection.execute(
                update(sessions)
                .where(sessions.c.id_hash == id_hash)
                .values(last_seen_at=now)
            )

    def end_session(self, id_hash: str) -> None:
        """Delete a session, if it exists."""
        with self._write() as connection:
            connection.execute(delete(sessions).where(sessions.c.id_hash == id_hash))

    # Login attempts

    def add_failed_attempt(
        self, name: str, address: str, now: datetime, keep_since: datetime
    ) -> None:
        """Store a failed login attempt, deleting attempts from before ``keep_since``."""
        with self._write() as connection:
            connection.execute(
                delete(login_attempts).where(login_attempts.c.at < keep_since)
            )
            _add_attempt(connection, name, address, now, ok=False)

    def name_failures(self, name: str, since: datetime) -> Failures:
        """Count failed attempts on a name since ``since`` and its last success."""
        attempts = login_attempts.c
        last_success = (
            select(func.max(attempts.at))
            .where(attempts.name == _key(name), attempts.ok.is_(True))
            .scalar_subquery()
        )
        statement = select(func.count(), func.max(attempts.at)).where(
            attempts.name == _key(name),
            attempts.ok.is_(False),
            attempts.at > since,
            (attempts.at > last_success) | last_success.is_(None),
        )
        return self._failures(statement)

    def address_failures(self, address: str, since: datetime) -> Failures:
        """Count failed attempts from an address since ``since``, on any name."""
        attempts = login_attempts.c
        statement = select(func.count(), func.max(attempts.at)).where(
            attempts.address == _key(address),
            attempts.ok.is_(False),
            attempts.at > since,
        )
        return self._failures(statement)

    def _failures(self, statement: Any) -> Failures:
        with self._read() as connection:
            count, newest = connection.execute(statement).one()
        return Failures(count=count, newest=newest)

    # Audit log

    def add_audit(
        self,
        actor: str | None,
        action: str,
        subject: tuple[str, str | int] | None,
        details: Mapping[str, Any],
        now: datetime,
    ) -> int:
        """Append an entry to the audit log in a transaction of its own and
        return its id."""
        with self._write() as connection:
            return insert_audit(connection, actor, action, subject, details, now)

    def has_audit(
        self, action: str, subject: tuple[str, str | int], since: datetime
    ) -> bool:
        """Tell whether an entry of ``action`` about ``subject`` was added at or
        after ``since``."""
        subject_type, subject_id = subject
        statement = (
            select(audit_log.c.id)
            .where(
                audit_log.c.subject_type == subject_type,
                audit_log.c.subject_id == _key(str(subject_id)),
                audit_log.c.action == action,
                audit_log.c.at >= since,
            )
            .limit(1)
        )
        with self._read() as connection:
            return connection.execute(statement).first() is not None

    def audit_entries(
        self, limit: int, before_id: int | None = None
    ) -> list[AuditRecord]:
        """Return up to ``limit`` entries, newest first, older than ``before_id``."""
        statement = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            statement = statement.where(audit_log.c.id < before_id)
        with self._read() as connection:
            rows = connection.execute(statement).mappings().all()
        return [AuditRecord(**row) for row in rows]


def insert_audit(
    connection: Connection,
    actor: str | None,
    action: str,
    subject: tuple[str, str | int] | None,
    details: Mapping[str, Any],
    now: datetime,
) -> int:
    """Append an entry to the audit log in the caller's transaction; return its id.

    The entry commits or rolls back with the change it records.
    """
    subject_type, subject_id = (None, None) if subject is None else subject
    row = {
        "actor": actor,
        "at": now,
        "action": action,
        "subject_type": subject_type,
        "subject_id": None if subject_id is None else _key(str(subject_id)),
        "details": dict(details),
    }
    result = connection.execute(insert(audit_log).values(row))
    return result.inserted_primary_key[0]


def enabled_user(connection: Connection, name: str) -> UserRecord | None:
    """Return the user of this name unless there is none or it is disabled."""
    row = connection.execute(
        select(users).where(users.c.name == name, users.c.disabled.is_(False))
    ).first()
    return None if row is None else _user(row._mapping)


def _user(row: Mapping[str, Any]) -> UserRecord:
    return UserRecord(
        id=row["id"],
        name=row["name"],
        display_name=row["display_name"],
        role=row["role"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        disabled=row["disabled"],
    )


def _user_id(connection: Connection, name: str) -> int | None:
    return connection.execute(
        select(users.c.id).where(users.c.name == name)
    ).scalar_one_or_none()


def _key(value: str) -> str:
    return value[:MAX_KEY_LENGTH]


def _add_attempt(
    connection: Connection, name: str, address: str, now: datetime, *, ok: bool
) -> None:
    connection.execute(
        insert(login_attempts).values(
            name=_key(name), address=_key(address), at=now, ok=ok
        )
    )
