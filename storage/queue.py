"""The review queue: posts whose latest grading is medium or critical.

A post's latest grading counts only when it belongs to the post's latest
classification, so that a post classified again as praise leaves the queue.
Pages are read with a keyset (the sort key of the last row shown) instead of
OFFSET, so that a late page costs no more than the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from .tables import UTCDateTime, classifications, gradings, posts

QUEUE_LEVELS = ("critical", "medium")
# Characters of post text that a queue row carries.
SNIPPET_LENGTH = 80
# The sort value of a grading without a deadline, which goes after every
# deadline.
NO_DEADLINE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class QueueKey:
    """The position of a row in the queue order, for reading the next page."""

    level: str
    deadline: datetime
    posted_at: datetime
    post_id: int


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The level, kind and source that the queue is narrowed to; None matches any."""

    level: str | None = None
    kind: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One post in the queue.

    ``snippet`` is the first :data:`SNIPPET_LENGTH` characters of the text.
    ``posted_at`` is the post's time, or its collection time when the source
    gave none. ``deadline`` is None when the grading set no response time.
    """

    post_id: int
    level: str
    kind: str
    snippet: str
    author_name: str | None
    source: str
    platform: str
    posted_at: datetime
    deadline: datetime | None

    @property
    def key(self) -> QueueKey:
        return QueueKey(
            level=self.level,
            deadline=self.deadline or NO_DEADLINE,
            posted_at=self.posted_at,
            post_id=self.post_id,
        )


class ReviewQueue:
    """Reads the review queue from a Store's engine.

    The order is critical before medium, then the earliest deadline first
    (overdue posts lead), then the newest post first.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(
        self,
        limit: int,
        queue_filter: QueueFilter | None = None,
        after: QueueKey | None = None,
    ) -> list[QueueRow]:
        """Return up to ``limit`` rows that follow ``after`` in queue order."""
        level_rank = _level_rank(gradings.c.level)
        deadline = func.coalesce(gradings.c.deadline, _utc(NO_DEADLINE))
        posted_at = func.coalesce(posts.c.created_at, posts.c.collected_at)
        statement = (
            select(
                posts.c.id,
                gradings.c.level,
                classifications.c.kind,
                func.substr(posts.c.text, 1, SNIPPET_LENGTH).label("snippet"),
                posts.c.author_name,
                posts.c.source,
                posts.c.platform,
                type_coerce(posted_at, UTCDateTime).label("posted_at"),
                gradings.c.deadline,
            )
            .join_from(gradings, posts, posts.c.id == gradings.c.post_id)
            .join(classifications, classifications.c.id == gradings.c.classification_id)
            .where(gradings.c.level.in_(QUEUE_LEVELS), *_latest_only())
            .where(*_filters(queue_filter or QueueFilter()))
            .order_by(level_rank, deadline, posted_at.desc(), posts.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(
                _follows(after, level_rank, deadline, posted_at)
            )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_queue_row(row) for row in rows]


def _level_rank(level: Any) -> Any:
    return case(
        *((level == name, rank) for rank, name in enumerate(QUEUE_LEVELS)),
        else_=len(QUEUE_LEVELS),
    )


def _utc(moment: datetime) -> Any:
    return type_coerce(literal(moment), UTCDateTime)


def _latest_only() -> list[Any]:
    """Keep a grading only when no newer grading or classification of its
    post exists."""
    newer_grading = gradings.alias("newer_grading")
    newer_classification = classifications.alias("newer_classification")
    return [
        ~exists().where(
            newer_grading.c.post_id == gradings.c.post_id,
            newer_grading.c.id > gradings.c.id,
        ),
        ~exists().where(
            newer_classification.c.post_id == gradings.c.post_id,
            newer_classification.c.id > gradings.c.classification_id,
        ),
    ]


def _filters(queue_filter: QueueFilter) -> list[Any]:
    conditions = []
    if queue_filter.level is not None:
        conditions.append(gradings.c.level == queue_filter.level)
    if queue_filter.kind is not None:
        conditions.append(classifications.c.kind == queue_filter.kind)
    if queue_filter.source is not None:
        conditions.append(posts.c.source == queue_filter.source)
    return conditions


def _follows(key: QueueKey, level_rank: Any, deadline: Any, posted_at: Any) -> Any:
    """Match the rows after ``key``: a mixed-direction keyset spelled out,
    because a row-value comparison sorts every column the same way."""
    rank = QUEUE_LEVELS.index(key.level)
    posted = type_coerce(posted_at, UTCDateTime)
    later_post = or_(
        posted < _utc(key.posted_at),
        and_(posted == _utc(key.posted_at), posts.c.id < key.post_id),
    )
    later_deadline = or_(
        deadline > _utc(key.deadline),
        and_(deadline == _utc(key.deadline), later_post),
    )
    return or_(level_rank > rank, and_(level_rank == rank, later_deadline))


def _queue_row(row: Any) -> QueueRow:
    return QueueRow(
        post_id=row.id,
        level=row.level,
        kind=row.kind,
        snippet=row.snippet,
        author_name=row.author_name,
        source=row.source,
        platform=row.platform,
        posted_at=row.posted_at,
        deadline=row.deadline,
    )
