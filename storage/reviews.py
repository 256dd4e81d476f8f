"""Analysts' work on posts: review state, notes, corrections and the post's alert.

The write functions take the connection of a transaction that the caller
opened with :meth:`PostReviews.write`, so that a change and the audit entry
recording it (:func:`storage.accounts.insert_audit`) commit or roll back
together. They raise ValueError for an invalid value and
:class:`ReviewConflict` (:class:`PostClosed`, :class:`PostNotClosed`) for an
action that does not fit the post's state.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, insert, or_, select, update

from items import KINDS, LEVELS

from .engine import read_transaction, write_transaction
from .queue_index import refresh_queue
from .tables import alerts, classifications, gradings, posts, problem_posts
from .web_tables import (
    CORRECTED_FIELDS,
    RESOLUTIONS,
    corrections,
    post_notes,
    post_reviews,
)

MAX_NOTE_LENGTH = 2000


class ReviewConflict(Exception):
    """An action that does not fit the post's review state."""


class PostClosed(ReviewConflict):
    """A change to a closed post other than reopening it."""


class PostNotClosed(ReviewConflict):
    """Reopening a post that is not closed."""


@dataclass(frozen=True, slots=True)
class ReviewState:
    """The review state of a post; a post never acted on is open."""

    status: str = "open"
    assignee: str | None = None
    resolution: str | None = None
    satisfied: bool | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class NoteRecord:
    """A stored note on a post."""

    id: int
    post_id: int
    author: str
    created_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """A stored correction or confirmation of a post's kind or level."""

    id: int
    post_id: int
    field: str
    old_value: str | None
    new_value: str
    corrected_by: str
    corrected_at: datetime


@dataclass(frozen=True, slots=True)
class AlertState:
    """The handling state of the newest alert about a post."""

    id: int
    status: str
    level: str
    deadline: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


@dataclass(frozen=True, slots=True)
class PostReview:
    """Everything the post page shows about analysts' work on one post.

    ``kind`` and ``level`` are the values in force: the latest correction,
    else the classifier's and the grading's.
    """

    state: ReviewState
    notes: list[NoteRecord]
    corrections: list[CorrectionRecord]
    alert: AlertState | None
    kind: str | None
    level: str | None


@dataclass(frozen=True, slots=True)
class KindLabel:
    """The latest kind correction of one post, with the post, for training."""

    correction_id: int
    post_id: int
    kind: str
    corrected_by: str
    post: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrainingLabels:
    """The corrections that training reads.

    ``kinds`` contains the latest kind correction of each post. ``level_posts``
    counts the posts with a level correction, which the kind model does not
    learn from. ``last_id`` is the newest correction's id (0 for none).
    """

    kinds: list[KindLabel]
    level_posts: int
    last_id: int


class PostReviews:
    """Reads analysts' work on posts, and opens the transactions that change it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self) -> AbstractContextManager[Connection]:
        """Open a write transaction for the functions of this module."""
        return write_transaction(self.engine)

    def overview(self, post_id: int) -> PostReview:
        """Return the review state, notes, corrections and alert of a post."""
        with read_transaction(self.engine) as connection:
            found = connection.execute(
                select(corrections)
                .where(corrections.c.post_id == post_id)
                .order_by(corrections.c.id)
            ).mappings()
            correction_list = [CorrectionRecord(**row) for row in found]
            notes = connection.execute(
                select(post_notes)
                .where(post_notes.c.post_id == post_id)
                .order_by(post_notes.c.id)
            ).mappings()
            return PostReview(
                state=review_state(connection, post_id),
                notes=[NoteRecord(**row) for row in notes],
                corrections=correction_list,
                alert=post_alert(connection, post_id),
                kind=current_value(connection, post_id, "kind"),
                level=current_value(connection, post_id, "level"),
            )

    def corrections_after(self, last_id: int) -> int:
        """Count the corrections stored after the one with id ``last_id``."""
        with read_transaction(self.engine) as connection:
            return connection.execute(
                select(func.count()).where(corrections.c.id > last_id)
            ).scalar_one()

    def training_labels(self) -> TrainingLabels:
        """Return the latest kind correction of each post, oldest first."""
        newer = corrections.alias("newer")
        latest = ~exists().where(
            newer.c.post_id == corrections.c.post_id,
            newer.c.field == corrections.c.field,
            newer.c.id > corrections.c.id,
        )
        statement = (
            select(corrections, *_post_columns())
            .join_from(corrections, posts, posts.c.id == corrections.c.post_id)
            .where(corrections.c.field == "kind", latest)
            .order_by(corrections.c.id)
        )
        level_posts = select(func.count(func.distinct(corrections.c.post_id))).where(
            corrections.c.field == "level"
        )
        with read_transaction(self.engine) as connection:
            rows = connection.execute(statement).mappings().all()
            levels = connection.execute(level_posts).scalar_one()
            last_id = connection.execute(
                select(func.coalesce(func.max(corrections.c.id), 0))
            ).scalar_one()
        return TrainingLabels([_kind_label(row) for row in rows], levels, last_id)


def review_state(connection: Connection, post_id: int) -> ReviewState:
    """Return a post's review state; a post without a row is open."""
    row = (
        connection.execute(
            select(post_reviews).where(post_reviews.c.post_id == post_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return ReviewState()
    return ReviewState(**{key: value for key, value in row.items() if key != "post_id"})


def set_assignee(
    connection: Connection, post_id: int, assignee: str | None, by: str, now: datetime
) -> ReviewState:
    """Assign a post to ``assignee``, or unassign it with None.

    Raises PostClosed for a closed post. The caller checks that the
    assignee is an enabled user.
    """
    current = review_state(connection, post_id)
    if current.status == "closed":
        raise PostClosed(f"post {post_id} is closed")
    status = "open" if assignee is None else "assigned"
    return _save_state(
        connection, post_id, current, {"status": status, "assignee": assignee}, by, now
    )


def close(
    connection: Connection,
    post_id: int,
    resolution: str,
    satisfied: bool | None,
    by: str,
    now: datetime,
) -> ReviewState:
    """Close a post with a resolution, and its alert with it; raise
    PostClosed when the post is closed."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"invalid resolution {resolution!r}")
    current = review_state(connection, post_id)
    if current.status == "closed":
        raise PostClosed(f"post {post_id} is closed")
    values = {
        "status": "closed",
        "resolution": resolution,
        "satisfied": satisfied,
        "closed_at": now,
        "closed_by": by,
    }
    state = _save_state(connection, post_id, current, values, by, now)
    # A closed post needs no more escalation: its alert closes with it.
    alert = post_alert(connection, post_id)
    if alert is not None and alert.status != "closed":
        connection.execute(
            update(alerts)
            .where(alerts.c.id == alert.id)
            .values(status="closed", updated_at=now)
        )
    return state


def reopen(connection: Connection, post_id: int, by: str, now: datetime) -> ReviewState:
    """Reopen a closed post, assigned again to its assignee if it had one.

    Raises PostNotClosed when the post is not closed.
    """
    current = review_state(connection, post_id)
    if current.status != "closed":
        raise PostNotClosed(f"post {post_id} is not closed")
    values = {
        "status": "open" if current.assignee is None else "assigned",
        "resolution": None,
        "satisfied": None,
        "closed_at": None,
        "closed_by": None,
    }
    return _save_state(connection, post_id, current, values, by, now)


def _save_state(
    connection: Connection,
    post_id: int,
    current: ReviewState,
    values: dict[str, Any],
    by: str,
    now: datetime,
) -> ReviewState:
    values = {**values, "updated_at": now, "updated_by": by}
    # NOTE: on PostgreSQL two first actions on one post at the same moment
    # both insert, and the later one fails on the primary key (a 500 on the
    # page, with nothing stored). SQLite runs write transactions one by one.
    if current.updated_at is None:
        row = {**asdict(current), **values, "post_id": post_id}
        connection.execute(insert(post_reviews).values(row))
    else:
        connection.execute(
            update(post_reviews).where(post_reviews.c.post_id == post_id).values(values)
        )
    return review_state(connection, post_id)


def add_note(
    connection: Connection, post_id: int, author: str, text: str, now: datetime
) -> int:
    """Store a note on a post and return its id.

    Raises ValueError for an empty note or one longer than MAX_NOTE_LENGTH.
    """
    if not text.strip() or len(text) > MAX_NOTE_LENGTH:
        raise ValueError(f"a note has 1 to {MAX_NOTE_LENGTH} characters")
    result = connection.execute(
        insert(post_notes).values(
            post_id=post_id, author=author, created_at=now, text=text
        )
    )
    return result.inserted_primary_key[0]


def add_correction(
    connection: Connection,
    post_id: int,
    field: str,
    new_value: str,
    by: str,
    now: datetime,
) -> CorrectionRecord:
    """Store an analyst's value for a post's kind or level, with the value before.

    Raises ValueError for an unknown field or value.
    """
    allowed = {"kind": KINDS, "level": LEVELS}
    if field not in CORRECTED_FIELDS or new_value not in allowed[field]:
        raise ValueError(f"invalid {field} {new_value!r}")
    row = {
        "post_id": post_id,
        "field": field,
        "old_value": current_value(connection, post_id, field),
        "new_value": new_value,
        "corrected_by": by,
        "corrected_at": now,
    }
    result = connection.execute(insert(corrections).values(row))
    # The queue orders and filters by the kind and level in force.
    refresh_queue(connection, [post_id])
    return CorrectionRecord(id=result.inserted_primary_key[0], **row)


def current_value(connection: Connection, post_id: int, field: str) -> str | None:
    """Return the kind or level in force: the latest correction, else the
    latest classification's kind or its latest grading's level."""
    corrected = connection.execute(
        select(corrections.c.new_value)
        .where(corrections.c.post_id == post_id, corrections.c.field == field)
        .order_by(corrections.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if corrected is not None:
        return corrected
    latest = connection.execute(
        select(classifications.c.id, classifications.c.kind)
        .where(classifications.c.post_id == post_id)
        .order_by(classifications.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    if field == "kind":
        return latest.kind
    return connection.execute(
        select(gradings.c.level)
        .where(gradings.c.classification_id == latest.id)
        .order_by(gradings.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def post_alert(connection: Connection, post_id: int) -> AlertState | None:
    """Return the newest alert about a post or about its incident, or None.

    An incident's alert names the post that opened it, so a later copy or
    repost finds the alert through its incident.
    """
    incident = (
        select(problem_posts.c.incident_id)
        .where(problem_posts.c.post_id == post_id)
        .scalar_subquery()
    )
    row = connection.execute(
        select(
            alerts.c.id,
            alerts.c.status,
            alerts.c.level,
            alerts.c.deadline,
            alerts.c.acknowledged_at,
            alerts.c.acknowledged_by,
        )
        .where(or_(alerts.c.post_id == post_id, alerts.c.incident_id == incident))
        .order_by(alerts.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else AlertState(**row._mapping)


def _post_columns() -> list[Any]:
    return [
        posts.c.text.label("post_text"),
        posts.c.source.label("post_source"),
        posts.c.platform.label("post_platform"),
        posts.c.title.label("post_title"),
        posts.c.author_name.label("post_author_name"),
        posts.c.author_followers.label("post_author_followers"),
        posts.c.author_verified.label("post_author_verified"),
        posts.c.author_role.label("post_author_role"),
        posts.c.created_at.label("post_created_at"),
    ]


def _kind_label(row: Any) -> KindLabel:
    post = {
        key.removeprefix("post_"): value
        for key, value in row.items()
        if key.startswith("post_") and key != "post_id"
    }
    return KindLabel(
        correction_id=row["id"],
        post_id=row["post_id"],
        kind=row["new_value"],
        corrected_by=row["corrected_by"],
        post=post,
    )
