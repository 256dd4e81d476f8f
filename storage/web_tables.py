"""The tables of the review page: accounts, sessions, login attempts, audit log,
the review state of posts, analysts' notes and their corrections.

They share the metadata of :mod:`storage.tables`, which imports this module,
so that Alembic and the schema tests see every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from items import KINDS, LEVELS

from .tables import FALSE, ID, Base, _in

ROLES = ("viewer", "analyst", "lead")
REVIEW_STATUSES = ("open", "assigned", "closed")
RESOLUTIONS = ("handled", "no_action", "false_alarm", "duplicate")
CORRECTED_FIELDS = ("kind", "level")


class User(Base):
    """An account of the review page.

    ``password_hash`` is an argon2id hash in the PHC string format. A disabled
    user cannot log in and has no sessions.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), "role"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(server_default=FALSE)


class UserSession(Base):
    """A signed-in browser, stored under the SHA-256 of its cookie value.

    Only the hash is stored, so that a copy of the database gives no way into
    the page. ``csrf_token`` is the value every form of the session carries.
    """

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "user_id"), Index(None, "expires_at"))

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    csrf_token: Mapped[str] = mapped_column(String(64))


class LoginAttempt(Base):
    """One login attempt, counted by name and by address to throttle guessing.

    ``name`` is the name as typed (lower-cased, cut to 64 characters), whether
    or not such a user exists.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index(None, "name", "at"),
        Index(None, "address", "at"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    ok: Mapped[bool]


class AuditEntry(Base):
    """One action in the audit trail. Rows are only ever added.

    ``actor`` is the user's name at the time, or None for the command line and
    for attempts without a logged-in user. ``subject_type`` and ``subject_id`` name
    what the action was about (a post, a user), when it was about anything.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"), Index(None, "subject_type", "subject_id"))

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]


class PostReview(Base):
    """The review state of a post: open, assigned to someone, or closed.

    A post without a row is open and unassigned. ``assignee`` and
    ``closed_by`` are user names. A closed post has a ``resolution`` (handled,
    no_action, false_alarm, duplicate), and a closed complaint records whether
    the customer was ``satisfied`` (None when not known). ``updated_by`` made
    the last change.
    """

    __tablename__ = "post_reviews"
    __table_args__ = (
        CheckConstraint(_in("status", REVIEW_STATUSES), "status"),
        CheckConstraint(
            "resolution IS NULL OR " + _in("resolution", RESOLUTIONS), "resolution"
        ),
        Index(None, "status", "assignee"),
    )

    post_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("posts.id"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(16))
    satisfied: Mapped[bool | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(64))


class Correction(Base):
    """An analyst's label for a post's kind or level, kept as training data.

    ``old_value`` is the value the post showed before: the latest correction
    of the same field, else the classifier's kind or the grading's level
    (None for a post never graded). A confirmation stores the same value in
    both columns. Rows are only ever added.
    """

    __tablename__ = "corrections"
    __table_args__ = (
        CheckConstraint(
            f"(field = 'kind' AND {_in('new_value', KINDS)}) OR "
            f"(field = 'level' AND {_in('new_value', LEVELS)})",
            "new_value",
        ),
        Index(None, "post_id", "field"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))
    field: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[str | None] = mapped_column(String(16))
    new_value: Mapped[str] = mapped_column(String(16))
    corrected_by: Mapped[str] = mapped_column(String(64))
    corrected_at: Mapped[datetime]


class PostNote(Base):
    """A note an analyst wrote on a post. Rows are only ever added."""

    __tablename__ = "post_notes"
    __table_args__ = (Index(None, "post_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)


users = User.__table__
sessions = UserSession.__table__
login_attempts = LoginAttempt.__table__
audit_log = AuditEntry.__table__
post_reviews = PostReview.__table__
corrections = Correction.__table__
post_notes = PostNote.__table__
